"""`solve`: checks every input before any work, runs the chosen backend, returns a Solution."""

from __future__ import annotations

from typing import Any, Sequence

from torch import Tensor

from . import backends
from ._errors import SolverError, reject_unknown_kwargs
from ._options import DEFAULT_ATOL, DEFAULT_MAXITERS, DEFAULT_RTOL, build_options
from ._problem import ODEProblem
from ._solution import Solution
from .controllers import PIController, PredictiveController
from .sensitivity import AbstractSensitivity, DirectAdjoint
from .sensitivity._adjoint import one_solve
from .solvers import default_solver
from .solvers._base import AbstractSolver


def solve(problem: ODEProblem, solver: AbstractSolver | None = None, *,
          saveat: float | Sequence[float] | Tensor | None = None,
          dt: float | None = None,
          rtol: float = DEFAULT_RTOL,
          atol: float | Sequence[float] | Tensor = DEFAULT_ATOL,
          dtmin: float | None = None,
          dtmax: float | None = None,
          maxiters: int = DEFAULT_MAXITERS,
          tstops: Sequence[float] | None = None,
          adaptive: bool | None = None,
          dense: bool | None = None,
          controller: PIController | PredictiveController | None = None,
          sensealg: Any = None,
          throw: bool = True,
          backend: str = "auto",
          **unknown: Any) -> Solution:
    """Solve `problem` with `solver` (DifferentialEquations.jl's `solve`).

    Arguments:
        problem: an `ODEProblem`.
        solver: a solver instance such as `Tsit5()`, `Rodas5P()` or `RK4()`. The default,
            `AutoTsit5(Rosenbrock23())`, starts with Tsit5 and switches to Rosenbrock23 where
            it detects stiffness (and back); below rtol 1e-6 it is `AutoVern7(Rodas5P())`.
            DifferentialEquations.jl's default chooses the same way for small systems.
        saveat: save exactly at these times (or every `saveat` from t0 to t1 when a
            number), by the solver's dense output, without forcing steps onto them.
            Without it every step is saved.
        dt: the step for fixed-step solvers (required there); the first step otherwise.
        rtol, atol: relative and absolute tolerances (DifferentialEquations.jl's defaults).
            `atol` may hold one value per state component.
        dtmin, dtmax: bounds on the step size; a step forced below `dtmin` ends the solve
            with `DtLessThanMin`.
        maxiters: the most steps (accepted and rejected) before the solve ends `MaxIters`.
        tstops: times the solver must step onto exactly (discontinuities in `f`).
        adaptive: `False` runs an adaptive method at the fixed step `dt`.
        dense: keep the dense output for `sol(t)`; defaults to `saveat is None`.
        controller: step-size control: a `PIController` (the default, with SciML's
            settings) or a `PredictiveController` (Gustafsson's, as RADAU5 and RODAS; fewer
            rejected steps where the error grows into fast transients).
        sensealg: how gradients are computed: `DirectAdjoint()` (backpropagation through the
            steps, the default), `InterpolatingAdjoint()`, `QuadratureAdjoint()`,
            `GaussAdjoint()` or `BacksolveAdjoint()` (continuous adjoints, memory flat in
            the number of steps).
            They differentiate with respect to `u0`, the tensors in `p` and, when `f` is an
            `nn.Module`, its parameters.
        throw: raise `SolverError` when the solve fails (default); with `False` the partial
            solution comes back with its `retcode` and `message`.
        backend: `"auto"` (the default: the compiled `"numba"` backend where the model
            qualifies, i.e. it traces, is float64 on the CPU, has no Python `jac`, and what
            is differentiated is something numba differentiates; else Julia where it is
            installed and the problem crosses; else `"native"`; it says once which it took),
            `"numba"` (compiled kernels, the fast path on a CPU), `"native"` (torch: any
            Python f, autograd through anything, CPU and GPU), or `"julia"`
            (DifferentialEquations.jl and SciMLSensitivity through juliacall; needs
            `pip install pyude[julia]`). A backend named explicitly refuses, with the
            reason, what it cannot take.

    Returns:
        a `Solution`. On the torch backend all trajectories of a batch share one step
        size, chosen so that every trajectory meets the tolerances; on the numba backend
        each trajectory takes its own steps and has its own return code (`sol.retcodes`).
    """
    reject_unknown_kwargs("solve()", unknown, _SOLVE_KEYWORDS)
    _check_types(problem, solver, throw)
    backends.check_name(backend)
    solver, sensealg = resolved(solver, sensealg, rtol)
    options = build_options(problem, solver, saveat=saveat, dt=dt, rtol=rtol, atol=atol,
                            dtmin=dtmin, dtmax=dtmax, maxiters=maxiters, tstops=tstops,
                            adaptive=adaptive, dense=dense, controller=controller)
    with one_solve():
        chosen = backends.choose(backend, problem, solver, options, sensealg)
        sol = chosen.solve(problem, solver, options, sensealg)
    if throw and not sol.success:
        raise SolverError(f"solve with {solver!r} failed: {sol.retcode}: {sol.message}", sol)
    return sol


def resolved(solver, sensealg, rtol=DEFAULT_RTOL) -> tuple:
    """The solver and sensitivity a solve uses: the given ones (the sensitivity checked),
    or the defaults (the default solver for `rtol`, `DirectAdjoint()`)."""
    return (default_solver(rtol) if solver is None else solver), _sensealg(sensealg)


def _sensealg(sensealg):
    if sensealg is None:
        return DirectAdjoint()
    if isinstance(sensealg, type) and issubclass(sensealg, AbstractSensitivity):
        raise TypeError(f"pass an instance, `{sensealg.__name__}()`, not the class")
    if not isinstance(sensealg, AbstractSensitivity):
        raise TypeError(f"sensealg must be a pyude sensitivity algorithm such as "
                        f"pyude.InterpolatingAdjoint(); got {sensealg!r}")
    return sensealg


_SOLVE_KEYWORDS = ("saveat", "dt", "rtol", "atol", "dtmin", "dtmax", "maxiters", "tstops",
                   "adaptive", "dense", "controller", "sensealg", "throw", "backend")


def _check_types(problem, solver, throw) -> None:
    if not isinstance(problem, ODEProblem):
        raise TypeError(f"solve() needs a pyude.ODEProblem; got {type(problem).__name__}. "
                        f"Build one with pyude.ODEProblem(f, u0, tspan, p).")
    if isinstance(solver, type) and issubclass(solver, AbstractSolver):
        raise TypeError(f"pass a solver instance, `{solver.__name__}()`, not the class "
                        f"`{solver.__name__}`")
    if solver is not None and not isinstance(solver, AbstractSolver):
        raise TypeError(f"solver must be a pyude solver such as pyude.Tsit5(); got {solver!r}")
    if not isinstance(throw, bool):
        raise TypeError(f"throw must be True or False; got {throw!r}")


