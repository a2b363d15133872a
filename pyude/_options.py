"""Every argument of a solve checked once, into one `SolveOptions` that every backend reads.

The defaults live here and nowhere else (`solve`, `NeuralODE`, `UDE`, `fit` and the Julia
bridge import them), so the backends cannot drift apart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor

from .controllers import PIController, PredictiveController

# DifferentialEquations.jl's defaults.
DEFAULT_RTOL = 1e-3
DEFAULT_ATOL = 1e-6
DEFAULT_MAXITERS = 100_000
# The most saved times a numeric `saveat` may ask for (each is a stored state).
MAX_SAVED = 10_000_000
# A span must hold at least this many floating-point steps of its times to be resolved.
MIN_RESOLUTION = 10_000


@dataclass
class SolveOptions:
    """A solve's options, validated: times as Python floats, tolerances as numbers or one
    tensor entry per state component, the controller already set up for the solver."""

    t0: float
    t1: float
    rtol: float | Tensor
    atol: float | Tensor
    dt: float | None
    dtmin: float
    dtmax: float
    maxiters: int
    saveat: list[float] | None
    tstops: list[float]
    adaptive: bool
    dense: bool
    controller: PIController | PredictiveController = field(default_factory=PIController)
    # the optional keywords the caller set (so a backend can name what it cannot honour)
    given: frozenset = frozenset()
    # called with every accepted step's record (GaussAdjoint integrates on the fly)
    on_step: Callable[[Any], None] | None = None

    @property
    def tdir(self) -> float:
        return 1.0 if self.t1 >= self.t0 else -1.0


def build_options(problem, solver, *, saveat=None, dt=None, rtol=DEFAULT_RTOL,
                  atol=DEFAULT_ATOL, dtmin=None, dtmax=None, maxiters=DEFAULT_MAXITERS,
                  tstops=None, adaptive=None, dense=None, controller=None) -> SolveOptions:
    """Check every option of a solve of `problem` with `solver`; raise with the fix."""
    t0, t1 = problem.tspan
    _check_resolution(t0, t1)
    optional = dict(saveat=saveat, dt=dt, dtmin=dtmin, dtmax=dtmax, tstops=tstops,
                    adaptive=adaptive, dense=dense, controller=controller)
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
    return SolveOptions(
        t0=t0, t1=t1, rtol=rtol, atol=atol, dt=None if dt is None else float(dt),
        dtmin=dtmin, dtmax=dtmax, maxiters=int(maxiters), saveat=save,
        tstops=[] if tstops is None else _times("tstops", tstops, t0, t1),
        adaptive=adaptive, dense=(save is None) if dense is None else bool(dense),
        controller=(controller or PIController()).for_solver(solver),
        given=frozenset(k for k, v in optional.items() if v is not None),
    )


def positive(name: str, value: Any, allow_zero: bool = False) -> float:
    """`value` as a finite positive (or non-negative) float, or a message saying what it is."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number; got {value!r}") from None
    if math.isnan(x) or x < 0 or (x == 0 and not allow_zero) or math.isinf(x):
        need = "non-negative" if allow_zero else "positive"
        raise ValueError(f"{name} must be a finite {need} number; got {value!r}")
    return x


def _check_resolution(t0: float, t1: float) -> None:
    ulp = np.spacing(max(abs(t0), abs(t1)))
    if t0 != t1 and abs(t1 - t0) < MIN_RESOLUTION * ulp:
        raise ValueError(
            f"tspan ({t0!r}, {t1!r}) is only {abs(t1 - t0) / ulp:.0f} floating-point steps of "
            f"its times wide, too few for a solver to resolve time there. Shift time: solve "
            f"on (0, {t1 - t0!r}) with f reading t + {t0!r}.")


def _check_linear_algebra_dtype(problem, solver) -> None:
    dtype = problem.u0.dtype
    if solver.implicit and dtype not in (torch.float32, torch.float64):
        raise ValueError(
            f"{solver!r} solves linear systems with W = I - gamma dt J, and torch's linear "
            f"algebra does not take {dtype}. Solve in float32 or float64 "
            f"(`u0.float()` and the same for p), or use an explicit solver such as Tsit5().")


def _tolerances(problem, rtol, atol):
    eps = torch.finfo(problem.u0.dtype).eps
    r = positive("rtol", rtol)
    if r < eps:
        raise ValueError(
            f"rtol={r:g} is below the precision of {problem.u0.dtype} (eps={eps:.3g}); no "
            f"step can meet it. Use rtol >= {10 * eps:.1g}, or solve in float64.")
    if isinstance(atol, (int, float)):
        return r, positive("atol", atol)
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
        step = positive("saveat", abs(float(saveat)))
        count = abs(t1 - t0) / step
        if count > MAX_SAVED:
            raise ValueError(
                f"saveat={saveat!r} on a span of {abs(t1 - t0):g} asks for {count:.3g} saved "
                f"states (at most {MAX_SAVED:.0e}); give a larger interval, or a list of the "
                f"times you need")
        n = int(math.floor(count * (1 + 1e-12)))
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
        if not isinstance(dt, (int, float, np.integer, np.floating)) or isinstance(dt, bool) \
                or not math.isfinite(dt) or dt == 0:
            raise ValueError(f"dt must be a finite non-zero number; got {dt!r}")
        if dt < 0 and tdir > 0:
            raise ValueError(f"dt={dt} is negative but tspan ({t0}, {t1}) runs forward; give "
                             f"the step's size (dt > 0): the direction comes from tspan")
    span = abs(t1 - t0)
    dtmin = 0.0 if dtmin is None else positive("dtmin", dtmin, allow_zero=True)
    dtmax = span if dtmax is None else positive("dtmax", dtmax)
    if dtmin > dtmax:
        raise ValueError(f"dtmin={dtmin!r} is larger than dtmax={dtmax!r} (dtmax defaults to "
                         f"the span, {span!r}); no step can satisfy both")
    return adaptive, dtmin, dtmax
