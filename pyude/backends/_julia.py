"""DifferentialEquations.jl through juliacall; `pyude.julia` is imported only when a solve
goes there, so `import pyude` never starts Julia."""

from __future__ import annotations

from ._base import Backend

# What the Julia bridge does not take yet (solve options by their keyword names).
NOT_ON_JULIA = ("dt", "dtmin", "dtmax", "tstops", "adaptive", "dense", "controller")


class JuliaBackend(Backend):
    name = "julia"

    def unsupported(self, problem, solver, options, sensealg) -> str | None:
        from .. import julia
        if not julia.available():
            return "Julia is not installed"
        if options.saveat is None or options.given & set(NOT_ON_JULIA):
            return "the solve uses options only the native backend has"
        if list(getattr(problem.f, "parameters", list)()):
            return "networks cross to Julia only through NeuralODE/UDE with backend='julia'"
        try:
            from ..symbolic import to_julia, trace
            to_julia(trace(problem.f, problem.n_states, problem.p))
        except Exception as err:  # whatever stops the model from printing as Julia
            return f"the model cannot cross to Julia ({err})"
        return None

    def solve(self, problem, solver, options, sensealg):
        from ..julia import _solve as julia_solve
        refused = sorted(options.given & set(NOT_ON_JULIA))
        if refused:
            raise ValueError(f"backend='julia' does not take {', '.join(refused)} yet; "
                             f"use backend='native' for them")
        return julia_solve.solve(problem, solver, saveat=options.saveat, rtol=options.rtol,
                                 atol=options.atol, maxiters=options.maxiters,
                                 sensealg=sensealg, autodiff=getattr(solver, "autodiff", True))
