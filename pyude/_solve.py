"""`solve`: checks every input before any work, runs the chosen backend, returns a Solution."""

from __future__ import annotations

import math
import warnings
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor

from ._errors import SolverError, reject_unknown_kwargs
from ._loop import LoopOptions, integrate
from ._model import RHS
from ._problem import ODEProblem
from ._solution import Solution
from .controllers import PIController, PredictiveController
from .solvers import default_solver
from .sensitivity import AbstractContinuousAdjoint
from .solvers._base import AbstractImplicitSolver, AbstractSolver

BACKENDS = ("native", "julia", "auto")
DEFAULT_MAXITERS = 100_000


def solve(problem: ODEProblem, solver: AbstractSolver | None = None, *,
          saveat: float | Sequence[float] | Tensor | None = None,
          dt: float | None = None,
          rtol: float = 1e-3,
          atol: float | Sequence[float] | Tensor = 1e-6,
          dtmin: float | None = None,
          dtmax: float | None = None,
          maxiters: int = DEFAULT_MAXITERS,
          tstops: Sequence[float] | None = None,
          adaptive: bool | None = None,
          dense: bool | None = None,
          controller: PIController | PredictiveController | None = None,
          sensealg: Any = None,
          throw: bool = True,
          backend: str = "native",
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
        backend: `"native"` (torch, the default), `"julia"` (DifferentialEquations.jl and
            SciMLSensitivity through juliacall; needs `pip install pyude[julia]`), or
            `"auto"` (Julia when it is installed and the problem can cross, else native; it
            says once which it took).

    Returns:
        a `Solution`. All trajectories of a batch share one step size, chosen so that every
        trajectory meets the tolerances.
    """
    reject_unknown_kwargs("solve()", unknown, _SOLVE_KEYWORDS)
    _check_types(problem, solver, backend, throw)
    sensealg = _sensealg(sensealg)
    solver = default_solver(rtol) if solver is None else solver
    opts = _loop_options(problem, solver, saveat, dt, rtol, atol, dtmin, dtmax, maxiters,
                         tstops, adaptive, dense, controller)
    backend = _choose_backend(backend, problem, solver, opts, sensealg)
    if backend == "julia":
        from .julia import _solve as julia_solve
        sol = julia_solve.solve(problem, solver, opts, sensealg)
    elif isinstance(sensealg, AbstractContinuousAdjoint) and _needs_grad(problem):
        forward, u = sensealg.solve(problem, solver, opts)
        sol = Solution(forward.t, u, forward.retcode, forward.message, forward.stats, solver,
                       forward._steps if opts.dense else None, opts.tdir, forward.methods)
    elif getattr(sensealg, "checkpointing", False) and _needs_grad(problem):
        from .sensitivity._checkpoint import solve_checkpointed
        sol = solve_checkpointed(problem, solver, opts)
    else:
        rhs = RHS(problem.f, problem.p, problem.jac)
        f0 = rhs.first_call(problem.tspan[0], problem.u0)
        result = integrate(rhs, solver, problem.u0, f0, opts)
        sol = _to_solution(result, problem.u0, solver, opts.tdir)
    if throw and not sol.success:
        raise SolverError(f"solve with {solver!r} failed: {sol.retcode}: {sol.message}", sol)
    return sol


_ANNOUNCED: set = set()


class BackendNotice(UserWarning):
    """Which backend `backend="auto"` took (said once per process and backend)."""


def _choose_backend(backend: str, problem: ODEProblem, solver, opts, sensealg) -> str:
    if backend != "auto":
        return backend
    from . import julia
    reason = julia.auto_refusal(problem, solver, opts, sensealg)
    chosen = "native" if reason else "julia"
    if chosen not in _ANNOUNCED:
        _ANNOUNCED.add(chosen)
        warnings.warn(f"backend='auto' solves on the {chosen} backend"
                      + (f": {reason}" if reason else ""), BackendNotice, stacklevel=3)
    return chosen


def _to_solution(result, u0: Tensor, solver: AbstractSolver, tdir: float) -> Solution:
    t = torch.tensor(result.ts, dtype=u0.dtype, device=u0.device)
    u = torch.stack(result.us) if result.us else u0.new_zeros((0, *u0.shape))
    message = result.retcode.value if result.retcode.successful else (
        f"{result.detail}. {result.retcode.value}")
    return Solution(t, u, result.retcode, message, result.stats, solver, result.steps, tdir,
                    result.methods)


def _sensealg(sensealg):
    from .sensitivity import AbstractSensitivity, DirectAdjoint
    if sensealg is None:
        return DirectAdjoint()
    if isinstance(sensealg, type) and issubclass(sensealg, AbstractSensitivity):
        raise TypeError(f"pass an instance, `{sensealg.__name__}()`, not the class")
    if not isinstance(sensealg, AbstractSensitivity):
        raise TypeError(f"sensealg must be a pyude sensitivity algorithm such as "
                        f"pyude.InterpolatingAdjoint(); got {sensealg!r}")
    return sensealg


def _needs_grad(problem: ODEProblem) -> bool:
    if not torch.is_grad_enabled():
        return False
    from .sensitivity._adjoint import param_spec
    return problem.u0.requires_grad or any(x.requires_grad for x in param_spec(problem).all)


_SOLVE_KEYWORDS = ("saveat", "dt", "rtol", "atol", "dtmin", "dtmax", "maxiters", "tstops",
                   "adaptive", "dense", "controller", "sensealg", "throw", "backend")


def _check_types(problem, solver, backend, throw) -> None:
    if not isinstance(problem, ODEProblem):
        raise TypeError(f"solve() needs a pyude.ODEProblem; got {type(problem).__name__}. "
                        f"Build one with pyude.ODEProblem(f, u0, tspan, p).")
    if isinstance(solver, type) and issubclass(solver, AbstractSolver):
        raise TypeError(f"pass a solver instance, `{solver.__name__}()`, not the class "
                        f"`{solver.__name__}`")
    if solver is not None and not isinstance(solver, AbstractSolver):
        raise TypeError(f"solver must be a pyude solver such as pyude.Tsit5(); got {solver!r}")
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; available backends: "
                         f"{', '.join(map(repr, BACKENDS))}")
    if not isinstance(throw, bool):
        raise TypeError(f"throw must be True or False; got {throw!r}")


def _positive(name: str, value: Any, allow_zero: bool = False) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number; got {value!r}") from None
    if math.isnan(x) or x < 0 or (x == 0 and not allow_zero) or math.isinf(x):
        need = "non-negative" if allow_zero else "positive"
        raise ValueError(f"{name} must be a finite {need} number; got {value!r}")
    return x


def _check_linear_algebra_dtype(problem: ODEProblem, solver: AbstractSolver) -> None:
    dtype = problem.u0.dtype
    implicit = isinstance(getattr(solver, "stiff", solver), AbstractImplicitSolver)
    if implicit and dtype not in (torch.float32, torch.float64):
        raise ValueError(
            f"{solver!r} solves linear systems with W = I - gamma dt J, and torch's linear "
            f"algebra does not take {dtype}. Solve in float32 or float64 "
            f"(`u0.float()` and the same for p), or use an explicit solver such as Tsit5().")


def _tolerances(problem: ODEProblem, rtol, atol):
    eps = torch.finfo(problem.u0.dtype).eps
    r = _positive("rtol", rtol)
    if r < eps:
        raise ValueError(
            f"rtol={r:g} is below the precision of {problem.u0.dtype} (eps={eps:.3g}); no "
            f"step can meet it. Use rtol >= {10 * eps:.1g}, or solve in float64.")
    if isinstance(atol, (int, float)):
        return r, _positive("atol", atol)
    a = torch.as_tensor(atol, dtype=problem.u0.dtype, device=problem.u0.device)
    if a.ndim != 1 or a.shape[0] != problem.n_states:
        raise ValueError(f"atol must be a number or have one value per state component "
                         f"({problem.n_states}); got shape {tuple(a.shape)}")
    if not bool(torch.isfinite(a).all()) or bool((a <= 0).any()):
        raise ValueError(f"atol must be finite and positive; got {a.tolist()}")
    return r, a


def _times(name: str, values, t0: float, t1: float) -> list[float]:
    arr = np.asarray(values.detach().cpu() if isinstance(values, Tensor) else values,
                     dtype=float).reshape(-1)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or Inf")
    lo, hi = min(t0, t1), max(t0, t1)
    slack = 1e-12 * max(abs(lo), abs(hi), 1.0)
    outside = arr[(arr < lo - slack) | (arr > hi + slack)]
    if outside.size:
        raise ValueError(f"{name} has times outside tspan ({t0}, {t1}): {outside[:5].tolist()}; "
                         f"every {name} time must lie in the time span")
    return np.clip(arr, lo, hi).tolist()


def _saveat(saveat, t0: float, t1: float) -> list[float] | None:
    if saveat is None:
        return None
    tdir = 1.0 if t1 >= t0 else -1.0
    if np.ndim(saveat.detach().cpu() if isinstance(saveat, Tensor) else saveat) == 0:
        step = _positive("saveat", abs(float(saveat)))
        n = int(math.floor(abs(t1 - t0) / step * (1 + 1e-12)))
        times = [t0 + tdir * i * step for i in range(n + 1)]
        if abs(times[-1] - t1) > 1e-12 * max(abs(t1), 1.0):
            times.append(t1)
        else:
            times[-1] = t1
        return times
    times = _times("saveat", saveat, t0, t1)
    if any(tdir * (b - a) < 0 for a, b in zip(times, times[1:])):
        raise ValueError(f"saveat must be ordered from t0={t0} towards t1={t1}; sort it")
    return times


def _step_sizes(problem, solver, dt, adaptive, dtmin, dtmax):
    t0, t1 = problem.tspan
    tdir = 1.0 if t1 >= t0 else -1.0
    adaptive = solver.adaptive if adaptive is None else bool(adaptive)
    if adaptive and not solver.adaptive:
        raise ValueError(f"{solver!r} has no error estimate, so it cannot adapt its step; "
                         f"use a fixed `dt`, or an adaptive solver such as Tsit5()")
    if not adaptive and dt is None and t0 != t1:
        raise ValueError(f"{solver!r} takes fixed steps, so it needs `dt`: for example "
                         f"solve(problem, {solver!r}, dt=0.01). (Adaptive solvers such as "
                         f"Tsit5() choose their own steps.)")
    if dt is not None:
        if not isinstance(dt, (int, float)) or isinstance(dt, bool) or not math.isfinite(dt) \
                or dt == 0:
            raise ValueError(f"dt must be a finite non-zero number; got {dt!r}")
        if dt < 0 and tdir > 0:
            raise ValueError(f"dt={dt} is negative but tspan ({t0}, {t1}) runs forward; give "
                             f"the step's size (dt > 0): the direction comes from tspan")
    span = abs(t1 - t0)
    dtmin = 0.0 if dtmin is None else _positive("dtmin", dtmin, allow_zero=True)
    dtmax = span if dtmax is None else _positive("dtmax", dtmax)
    return adaptive, dtmin, dtmax


def _loop_options(problem, solver, saveat, dt, rtol, atol, dtmin, dtmax, maxiters, tstops,
                  adaptive, dense, controller) -> LoopOptions:
    t0, t1 = problem.tspan
    _check_linear_algebra_dtype(problem, solver)
    rtol, atol = _tolerances(problem, rtol, atol)
    adaptive, dtmin, dtmax = _step_sizes(problem, solver, dt, adaptive, dtmin, dtmax)
    if isinstance(maxiters, bool) or not isinstance(maxiters, (int, np.integer)) \
            or maxiters < 1:
        raise ValueError(f"maxiters must be a positive integer; got {maxiters!r}")
    if controller is not None and not isinstance(controller, (PIController,
                                                              PredictiveController)):
        raise TypeError(f"controller must be a pyude.PIController or a "
                        f"pyude.PredictiveController; got {controller!r}")
    save = _saveat(saveat, t0, t1)
    return LoopOptions(
        t0=t0, t1=t1, rtol=rtol, atol=atol, dt=None if dt is None else float(dt),
        dtmin=dtmin, dtmax=dtmax, maxiters=int(maxiters), saveat=save,
        tstops=[] if tstops is None else _times("tstops", tstops, t0, t1),
        adaptive=adaptive, dense=(save is None) if dense is None else bool(dense),
        controller=(controller or PIController()).for_solver(solver),
    )
