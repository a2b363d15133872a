"""The compiled backend behind the protocol, importing numba only when a solve asks for it
(so `import pyude` stays light and a machine without numba keeps the other backends)."""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
import warnings

from ._base import Backend

# Loading the kernels from numba's cache takes about a second; compiling them, the first
# time on a machine, about twenty. Past this many seconds the user is told why they wait.
NOTICE_AFTER_S = 3.0


class CompileNotice(UserWarning):
    """pyude's compiled kernels are being built (once per machine and version)."""


def _kernels():
    """`pyude.backends.numba`, imported once; a slow first import says what it is doing."""
    name = f"{__package__}.numba"
    if name in sys.modules:
        return sys.modules[name]
    timer = threading.Timer(NOTICE_AFTER_S, warnings.warn, args=(
        "compiling pyude's numba kernels: about 20 s, once per machine and version (numba "
        "caches them); backend='native' solves without them", CompileNotice))
    timer.daemon = True
    timer.start()
    try:
        return importlib.import_module(name)
    finally:
        timer.cancel()


class CompiledBackend(Backend):
    name = "numba"

    def unsupported(self, problem, solver, options, sensealg) -> str | None:
        if importlib.util.find_spec("numba") is None:
            return "numba is not installed (pip install numba)"
        return _kernels().reason_not_compilable(problem, solver, options, sensealg)

    def solve(self, problem, solver, options, sensealg):
        return _kernels().solve(problem, solver, options, sensealg)
