"""`Solution`: saved times and states, how the solve ended, its statistics, dense output."""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import NamedTuple, Sequence

import numpy as np
import torch
from torch import Tensor

from ._errors import SolverError
from ._retcode import ReturnCode
from .solvers._base import AbstractSolver
from .solvers._dense import StepRecord


@dataclass
class Stats:
    """Work counters: f evaluations, accepted and rejected steps; the stiff solvers add
    Jacobians (njacs), factorisations (nw) and linear solves (nsolve)."""

    nf: int = 0
    naccept: int = 0
    nreject: int = 0
    njacs: int = 0
    nw: int = 0
    nsolve: int = 0

    @property
    def nsteps(self) -> int:
        return self.naccept + self.nreject


class NumpySolution(NamedTuple):
    t: np.ndarray
    u: np.ndarray


class Solution:
    """The result of `pyude.solve`.

    Attributes:
        t: saved times, shape `(T,)`.
        u: saved states, shape `(T, *batch, n)`; differentiable with respect to `u0`
            and `p` when they require grad.
        retcode: a `ReturnCode` (`Success`, `MaxIters`, `DtLessThanMin`, `Unstable`, ...).
        message: what happened, and what to do when it is not a success.
        stats: a `Stats` of work counters.

    For a composite solver such as `AutoTsit5(Rosenbrock23())`, `methods` lists the method
    that took each accepted step (DifferentialEquations.jl's `alg_choice`).

    Call `sol(t)` for the dense interpolant at any time in the solved span (available when
    `dense=True`, the default without `saveat`), and `sol.numpy()` for numpy arrays.
    """

    def __init__(self, t: Tensor, u: Tensor, retcode: ReturnCode, message: str, stats: Stats,
                 solver: AbstractSolver, steps: list[StepRecord] | None, tdir: float,
                 methods: list[AbstractSolver] | None = None):
        self.t = t
        self.u = u
        self.retcode = retcode
        self.message = message
        self.stats = stats
        self.solver = solver
        self._steps = steps
        self._tdir = tdir
        self.methods = methods
        self._starts = None if steps is None else [tdir * s.t0 for s in steps]

    @property
    def success(self) -> bool:
        return self.retcode.successful

    def raise_for_status(self) -> "Solution":
        """Raise `SolverError` with the message unless the solve succeeded."""
        if not self.success:
            raise SolverError(f"{self.retcode}: {self.message}", self)
        return self

    def numpy(self) -> NumpySolution:
        """`(t, u)` as numpy arrays (detached, on the CPU)."""
        return NumpySolution(self.t.detach().cpu().numpy(), self.u.detach().cpu().numpy())

    def __len__(self) -> int:
        return int(self.t.shape[0])

    def __call__(self, t: float | Sequence[float] | Tensor | np.ndarray) -> Tensor:
        """The dense interpolant: shape `(*batch, n)` for a scalar time, `(len(t), *batch, n)`
        for a sequence of times."""
        if self._steps is None:
            raise ValueError(
                "this solution keeps no dense output because it was solved with `saveat` "
                "(or `dense=False`); solve again without `saveat`, or with `dense=True`, "
                "to evaluate sol(t) at arbitrary times"
            )
        if isinstance(t, (Tensor, np.ndarray)):
            times = np.asarray(t.detach().cpu() if isinstance(t, Tensor) else t, dtype=float)
        else:
            times = np.asarray(t, dtype=float)
        if times.ndim == 0:
            return self._at(float(times))
        return torch.stack([self._at(float(x)) for x in times.reshape(-1)])

    def _near(self, time: float) -> Tensor:
        """The dense output at `time`, continuing the first or last step's polynomial a
        little past the span (for finite differences in t inside the adjoints)."""
        if not self._steps:
            return self.u[0]
        i = max(0, bisect.bisect_right(self._starts, self._tdir * time) - 1)
        rec = self._steps[i]
        return self.solver.interpolate(rec, (time - rec.t0) / rec.dt)

    def _at(self, time: float) -> Tensor:
        if not self._steps:
            return self.u[0]
        first, last = self._steps[0], self._steps[-1]
        lo, hi = self._tdir * first.t0, self._tdir * (last.t0 + last.dt)
        x = self._tdir * time
        span = max(abs(lo), abs(hi), 1.0) * 1e-13
        if x < lo - span or x > hi + span:
            raise ValueError(
                f"sol(t) at t={time} is outside the solved span "
                f"[{first.t0}, {last.t0 + last.dt}]; the interpolant does not extrapolate"
            )
        i = max(0, bisect.bisect_right(self._starts, x) - 1)
        rec = self._steps[i]
        theta = min(1.0, max(0.0, (time - rec.t0) / rec.dt))
        if theta == 1.0:
            return rec.u1
        if theta == 0.0:
            return rec.u0
        return self.solver.interpolate(rec, theta)

    def __repr__(self) -> str:
        return (f"Solution(retcode={self.retcode.name}, len={len(self)}, "
                f"u shape={tuple(self.u.shape)}, stats={self.stats})")
