"""The compiled backend behind the protocol, importing numba only when a solve asks for it
(so `import pyude` stays light and a machine without numba keeps the other backends)."""

from __future__ import annotations

import importlib.util

from ._base import Backend


class CompiledBackend(Backend):
    name = "numba"

    def unsupported(self, problem, solver, options, sensealg) -> str | None:
        if importlib.util.find_spec("numba") is None:
            return "numba is not installed (pip install numba)"
        from .numba import reason_not_compilable
        return reason_not_compilable(problem, solver, options, sensealg)

    def solve(self, problem, solver, options, sensealg):
        from .numba import solve
        return solve(problem, solver, options, sensealg)
