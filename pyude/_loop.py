"""The native integration loop: one shared step size for the whole batch.

`integrate` owns the loop; its helpers are named for what they do (`_trial_step`,
`_accept`, `_Saver`). A trial step is accepted when its scaled error `EEst <= 1` (adaptive)
or always (fixed step); time is kept as a Python float so that control flow never waits
for the device more than once per step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ._model import RHS
from ._norms import error_norm
from ._options import SolveOptions
from ._retcode import ReturnCode
from ._solution import Solution, StepDense, Stats
from .controllers import initial_dt
from .solvers._base import AbstractSolver
from .solvers._dense import StepRecord

# A trial step whose state or error is not finite is retried with a smaller step; after this
# many such trials in one solve the NaN/Inf is taken as real and the solve ends Unstable.
MAX_NONFINITE_TRIALS = 10
# An implicit step that cannot be completed (singular matrix, Newton divergence) is retried
# with dt / FAILFACTOR; after this many failures in a row the solve ends ConvergenceFailure.
FAILFACTOR = 2.0
MAX_CONSECUTIVE_FAILURES = 20


@dataclass
class LoopResult:
    ts: list[float]
    us: list[Tensor]
    retcode: ReturnCode
    detail: str
    stats: Stats
    steps: list[StepRecord] | None
    methods: list | None = None

    def to_solution(self, u0: Tensor, solver: AbstractSolver, tdir: float) -> Solution:
        t = torch.tensor(self.ts, dtype=u0.dtype, device=u0.device)
        u = torch.stack(self.us) if self.us else u0.new_zeros((0, *u0.shape))
        message = self.retcode.value if self.retcode.successful else (
            f"{self.detail}. {self.retcode.value}")
        dense = None if self.steps is None else StepDense(self.steps, solver, tdir, u0)
        return Solution(t=t, u=u, retcode=self.retcode, message=message, stats=self.stats,
                        solver=solver, dense=dense, methods=self.methods)


def solve_on_torch(problem, solver: AbstractSolver, o: SolveOptions) -> Solution:
    """Integrate `problem` and return its Solution; autograd records whatever the inputs
    ask for."""
    rhs = RHS(problem.f, problem.p, problem.jac)
    result = integrate(rhs, solver, problem.u0, rhs.first_call(o.t0, problem.u0), o)
    return result.to_solution(problem.u0, solver, o.tdir)


def _snap(a: float, b: float) -> float:
    """How close two times must be to count as the same time."""
    return 64 * 2.220446049250313e-16 * max(abs(a), abs(b), 1e-300)


def _which(u: Tensor) -> str:
    """Which trajectory of a batch went non-finite first (nothing for a single one)."""
    if u.ndim < 2:
        return ""
    bad = (~torch.isfinite(u.detach())).any(dim=-1).nonzero()
    return f" in trajectory {tuple(bad[0].tolist())} of the batch" if len(bad) else ""


def landing_stops(times: list[float], t0: float, tdir: float) -> list[float]:
    """The times to land on after t0, in order, each once (a stop repeated, or given again
    as t1, is one stop)."""
    stops: list[float] = []
    for s in sorted(times, key=lambda s: tdir * s):
        last = stops[-1] if stops else t0
        if tdir * (s - last) > _snap(s, last):
            stops.append(s)
    return stops


class _Saver:
    """Collects the output: every step, or exactly the `saveat` times by interpolation."""

    def __init__(self, solver: AbstractSolver, saveat: list[float] | None, tdir: float):
        self.solver, self.saveat, self.tdir = solver, saveat, tdir
        self.ts: list[float] = []
        self.us: list[Tensor] = []
        self.next = 0

    def start(self, t: float, u: Tensor) -> None:
        if self.saveat is None:
            self._put(t, u)
            return
        while self.next < len(self.saveat) and abs(self.saveat[self.next] - t) <= _snap(t, t):
            self._put(self.saveat[self.next], u)
            self.next += 1

    def step(self, rec: StepRecord, t1: float) -> None:
        if self.saveat is None:
            self._put(t1, rec.u1)
            return
        while self.next < len(self.saveat):
            s = self.saveat[self.next]
            if abs(s - t1) <= _snap(s, t1):
                self._put(s, rec.u1)
            elif self.tdir * (s - t1) < 0:
                self._put(s, self.solver.interpolate(rec, (s - rec.t0) / rec.dt))
            else:
                return
            self.next += 1

    def _put(self, t: float, u: Tensor) -> None:
        self.ts.append(t)
        self.us.append(u)


def integrate(rhs: RHS, solver: AbstractSolver, u0: Tensor, f0: Tensor,
              o: SolveOptions) -> LoopResult:
    """Integrate from (t0, u0), with f0 = f(t0, u0), to t1 or to the first failure."""
    tdir, stats = o.tdir, Stats()
    saver = _Saver(solver, o.saveat, tdir)
    steps: list[StepRecord] | None = [] if o.dense else None
    t, u = o.t0, u0
    saver.start(t, u)
    stops = landing_stops(o.tstops + [o.t1], t, tdir)
    if o.dt is not None or not stops:
        dt = tdir * abs(o.dt or 0.0)
    else:
        dt = initial_dt(rhs, t, u, f0, tdir, solver.order, o.rtol, o.atol, o.dtmax, o.dtmin)
    cache = solver.init_cache(o.rtol, o.atol)
    control, iters, nonfinite, failures = o.controller.start(), 0, 0, 0
    methods: list = []
    retcode, detail = ReturnCode.Success, ""
    while stops:
        if iters >= o.maxiters:
            retcode, detail = ReturnCode.MaxIters, f"maxiters={o.maxiters} reached at t={t:.9g}"
            break
        stop = stops[0]
        landing = tdir * (t + dt - stop) >= -_snap(t + dt, stop)
        dt_try = stop - t if landing else dt
        if abs(dt_try) < o.dtmin and not landing:
            retcode = ReturnCode.DtLessThanMin
            detail = f"|dt|={abs(dt_try):.3g} < dtmin={o.dtmin:.3g} at t={t:.9g}"
            break
        if t + dt_try == t:
            retcode = ReturnCode.DtLessThanMin
            detail = f"the step {dt_try:.3g} no longer changes t={t:.17g} in floating point"
            break
        iters += 1
        trial = solver.step(rhs, t, u, f0, dt_try, cache)
        if not trial.ok:
            stats.nreject += 1
            failures += 1
            if not o.adaptive or failures >= MAX_CONSECUTIVE_FAILURES:
                retcode = ReturnCode.ConvergenceFailure
                detail = f"{failures} step attempts from t={t:.9g} failed, down to dt={dt_try:.3g}"
                break
            dt = dt_try / FAILFACTOR
            continue
        failures = 0
        if o.adaptive:
            eest = error_norm(trial.err, u, trial.u1, o.rtol, o.atol)
        else:
            eest = 0.0 if bool(torch.isfinite(trial.u1.detach()).all()) else math.nan
        if not math.isfinite(eest):
            nonfinite += 1
            stats.nreject += 1
            if not o.adaptive or nonfinite >= MAX_NONFINITE_TRIALS:
                retcode = ReturnCode.Unstable
                detail = f"a step from t={t:.9g} gave a NaN or Inf state{_which(trial.u1)}"
                break
            dt = dt_try * o.controller.qmin
            continue
        if eest > 1.0:
            stats.nreject += 1
            dt = dt_try / o.controller.reject_factor(control, eest, solver.order_now(cache))
            continue
        t_new = stop if landing else t + dt_try
        if trial.f1 is not None:
            f1 = trial.f1
        elif landing and len(stops) == 1:          # the last step: no Jacobian to share with
            f1 = rhs(t_new, trial.u1)
        else:
            f1 = solver.derivative_at(rhs, t_new, trial.u1, cache)
        rec = StepRecord(t0=t, dt=dt_try, u0=u, u1=trial.u1, f0=f0, f1=f1,
                         stages=trial.stages, rhs=rhs)
        if trial.method is not None:
            rec.cache["method"] = trial.method
            methods.append(trial.method)
        saver.step(rec, t_new)
        if o.on_step is not None:
            o.on_step(rec)
        if steps is not None:
            steps.append(rec)
        if o.adaptive:
            q = o.controller.accept_factor(control, eest, dt_try, solver.order_now(cache))
            q /= solver.on_accept(cache, u, trial, dt_try)
            dt = tdir * min(abs(dt_try / q), o.dtmax)
        stats.naccept += 1
        t, u, f0 = t_new, trial.u1, f1
        if landing:
            stops.pop(0)
    stats.nf = rhs.nf
    for counter in ("njacs", "nw", "nsolve"):
        setattr(stats, counter, getattr(cache, counter, 0))
    return LoopResult(saver.ts, saver.us, retcode, detail, stats, steps, methods or None)
