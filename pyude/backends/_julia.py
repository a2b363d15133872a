"""DifferentialEquations.jl through juliacall; `pyude.julia` is imported only when a solve
goes there, so `import pyude` never starts Julia. The bridge itself refuses, with the
option's name, what OrdinaryDiffEq cannot honour."""

from __future__ import annotations

from ._base import Backend


class JuliaBackend(Backend):
    name = "julia"

    def unsupported(self, problem, solver, options, sensealg) -> str | None:
        from .. import julia
        return julia.auto_refusal(problem, solver, options, sensealg)

    def solve(self, problem, solver, options, sensealg):
        from ..julia import _solve as julia_solve
        return julia_solve.solve(problem, solver, options, sensealg)
