"""The compiled backend behind the protocol, importing numba only when a solve asks for it
(so `import pyude` stays light and a machine without numba keeps the other backends)."""

from __future__ import annotations

import contextlib
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


@contextlib.contextmanager
def compile_notice(what: str, seconds: str = "a few seconds"):
    """Says, with a `CompileNotice`, what is being compiled when it takes more than
    `NOTICE_AFTER_S` (numba loads a cached kernel in well under that)."""
    timer = threading.Timer(NOTICE_AFTER_S, warnings.warn, args=(
        f"compiling {what}: {seconds}, once per machine and version (numba caches the "
        f"result); backend='native' solves without compiling", CompileNotice))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def _kernels():
    """`pyude.backends.numba`, imported once; a slow first import says what it is doing."""
    name = f"{__package__}.numba"
    if name in sys.modules:
        return sys.modules[name]
    with compile_notice("pyude's numba kernels", "about 20 s"):
        return importlib.import_module(name)


def input_reason(problem) -> str | None:
    """Why the problem's inputs cannot go to the compiled kernels, found without loading
    them (a float32 or GPU user of `backend="auto"` never waits for their compile)."""
    import torch

    from ..sensitivity._adjoint import param_spec
    if problem.jac is not None:
        return ("the problem gives its own `jac`, a Python function the compiled kernels "
                "cannot call (they derive the Jacobian from the traced model); drop `jac` to "
                "use the derived one, or use backend='native' to use yours")
    if any(x.device.type != "cpu" for x in [problem.u0, *param_spec(problem).all]):
        return (f"the problem's tensors are on {problem.u0.device}, and the numba backend "
                f"runs on the CPU; move u0 and p to the CPU (`u0.cpu()`) or use "
                f"backend='native'")
    if problem.u0.dtype != torch.float64:
        return (f"u0 is {problem.u0.dtype}, and the numba backend computes in float64 only; "
                f"solve in float64 (`u0.double()`, and the same for p) or use "
                f"backend='native'")
    return None


class CompiledBackend(Backend):
    name = "numba"
    # The last verdict of `unsupported`, with the very arguments it judged: `auto` asks it
    # just before `solve`, which then need not check again (about 70 us a solve, a tenth of
    # a compiled training iteration).
    _verdict: tuple = ()

    def unsupported(self, problem, solver, options, sensealg) -> str | None:
        if importlib.util.find_spec("numba") is None:
            return "numba is not installed (pip install numba)"
        reason = input_reason(problem) or _kernels().reason_not_compilable(
            problem, solver, options, sensealg)
        self._verdict = (problem, solver, options, sensealg, reason)
        return reason

    def solve(self, problem, solver, options, sensealg):
        verdict = self._verdict
        checked = len(verdict) == 5 and verdict[4] is None and all(
            a is b for a, b in zip(verdict, (problem, solver, options, sensealg)))
        return _kernels().solve(problem, solver, options, sensealg, checked=checked)
