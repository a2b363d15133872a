"""`Solution`: saved times and states, how the solve ended, its statistics, dense output."""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, fields
from typing import Any, NamedTuple, Sequence

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

    def __add__(self, other: "Stats") -> "Stats":
        """The work of two solves together (intervals of one solve, trajectories of a
        batch)."""
        return Stats(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))


class NumpySolution(NamedTuple):
    t: np.ndarray
    u: np.ndarray


class StepDense:
    """Dense output from a solve's accepted steps: each step's record and the method that
    took it interpolate inside the step. `records` are the steps in order of time (the
    adjoints walk them); `start` is the initial state, the whole answer of a solve that took
    no step."""

    def __init__(self, records: list[StepRecord], solver: AbstractSolver, tdir: float,
                 start: Tensor):
        self.records, self.solver, self.tdir, self.start = records, solver, tdir, start
        self._starts = [tdir * r.t0 for r in records]

    @property
    def span(self) -> tuple[float, float]:
        first, last = self.records[0], self.records[-1]
        return first.t0, last.t0 + last.dt

    def _index(self, time: float) -> int:
        return max(0, bisect.bisect_right(self._starts, self.tdir * time) - 1)

    def near(self, time: float) -> Tensor:
        """The state at `time`, continuing the first or last step's polynomial a little past
        the span (for finite differences in t inside the adjoints)."""
        if not self.records:
            return self.start
        rec = self.records[self._index(time)]
        return self.solver.interpolate(rec, (time - rec.t0) / rec.dt)

    def at(self, time: float) -> Tensor:
        """The state at `time` inside the solved span."""
        if not math.isfinite(time):
            raise ValueError(f"sol(t) needs a finite time; got {time}")
        if not self.records:
            return self.start
        lo, hi = sorted(self.tdir * x for x in self.span)
        x = self.tdir * time
        slack = max(abs(lo), abs(hi), 1.0) * 1e-13
        if x < lo - slack or x > hi + slack:
            raise ValueError(
                f"sol(t) at t={time} is outside the solved span "
                f"[{self.span[0]}, {self.span[1]}]; the interpolant does not extrapolate")
        rec = self.records[self._index(time)]
        theta = min(1.0, max(0.0, (time - rec.t0) / rec.dt))
        if theta == 1.0:
            return rec.u1
        if theta == 0.0:
            return rec.u0
        return self.solver.interpolate(rec, theta)


class Solution:
    """The result of `pyude.solve`.

    Attributes:
        t: saved times, shape `(T,)`.
        u: saved states, shape `(T, *batch, n)`; differentiable with respect to `u0`
            and `p` when they require grad.
        retcode: a `ReturnCode` (`Success`, `MaxIters`, `DtLessThanMin`, `Unstable`, ...);
            for a batch solved trajectory by trajectory, the worst of `retcodes`.
        message: what happened, and what to do when it is not a success.
        stats: a `Stats` of work counters.
        retcodes: one `ReturnCode` per trajectory (shape `batch`) where the backend solves
            each trajectory on its own (the numba backend); None where the batch shares
            its steps.
        dense: the dense output (None when solved with `saveat` or `dense=False`).

    For a composite solver such as `AutoTsit5(Rosenbrock23())`, `methods` lists the method
    that took each accepted step (DifferentialEquations.jl's `alg_choice`).

    Call `sol(t)` for the dense interpolant at any time in the solved span (available when
    `dense=True`, the default without `saveat`), and `sol.numpy()` for numpy arrays.
    """

    def __init__(self, *, t: Tensor, u: Tensor, retcode: ReturnCode, message: str,
                 stats: Stats, solver: AbstractSolver, dense: Any = None,
                 methods: list[AbstractSolver] | None = None, retcodes: Any = None):
        self.t = t
        self.u = u
        self.retcode = retcode
        self.message = message
        self.stats = stats
        self.solver = solver
        self.dense = dense
        self.methods = methods
        self.retcodes = retcodes

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
        if self.dense is None:
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
            return self.dense.at(float(times))
        return torch.stack([self.dense.at(float(x)) for x in times.reshape(-1)])

    def __repr__(self) -> str:
        return (f"Solution(retcode={self.retcode.name}, len={len(self)}, "
                f"u shape={tuple(self.u.shape)}, stats={self.stats})")
