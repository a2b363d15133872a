"""The torch backend: any Python `f`, autograd through anything, CPU and GPU. The
sensitivity algorithm owns the solve, since it decides what autograd records."""

from __future__ import annotations

from ._base import Backend


class NativeBackend(Backend):
    name = "native"

    def unsupported(self, problem, solver, options, sensealg) -> str | None:
        return None

    def solve(self, problem, solver, options, sensealg):
        return sensealg.solve(problem, solver, options)
