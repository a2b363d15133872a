"""Dense output of a numba solve: the kernel's step storage, turned into `StepRecord`s only
for the steps that are asked about, and interpolated by the unchanged torch method
(`solver.interpolate`), so that `sol(t)` means the same on both backends."""

from __future__ import annotations

import bisect

import numpy as np
import torch
from torch import Tensor

from ...solvers._base import AbstractSolver
from ...solvers._dense import StepRecord


class DenseOutput:
    """The accepted steps of one trajectory: `steps[i] = (t0, dt)`, boundary states and
    derivatives `u[i]`, `f[i]` (step i runs from row i to row i + 1), each step's stages
    (the first `stage_rows[i]` rows of `stages[i]`) and the method that took it
    (`methods[i]`, None for a single method)."""

    def __init__(self, solver: AbstractSolver, steps: np.ndarray, u: np.ndarray,
                 f: np.ndarray, stages: np.ndarray, stage_rows: np.ndarray,
                 methods: list | None, rhs, tdir: float):
        self.solver, self.rhs, self.tdir = solver, rhs, tdir
        self._steps, self._u, self._f, self._stages = steps, u, f, stages
        self._rows, self._methods = stage_rows, methods
        self._records: dict[int, StepRecord] = {}
        self.starts = (tdir * steps[:, 0]).tolist()

    def __len__(self) -> int:
        return self._steps.shape[0]

    def __getitem__(self, i: int) -> StepRecord:
        i = range(len(self))[i]
        rec = self._records.get(i)
        if rec is None:
            tensor = torch.from_numpy
            rec = StepRecord(t0=float(self._steps[i, 0]), dt=float(self._steps[i, 1]),
                             u0=tensor(self._u[i]), u1=tensor(self._u[i + 1]),
                             f0=tensor(self._f[i]), f1=tensor(self._f[i + 1]),
                             stages=list(tensor(self._stages[i, :self._rows[i]]).unbind(0)),
                             rhs=self.rhs)
            if self._methods is not None:
                rec.cache["method"] = self._methods[i]
            self._records[i] = rec
        return rec

    @property
    def records(self) -> list[StepRecord]:
        """Every accepted step's record, in order of time."""
        return [self[i] for i in range(len(self))]

    @property
    def span(self) -> tuple[float, float]:
        """The solved span (t0 of the first step, end of the last)."""
        first, last = self._steps[0], self._steps[-1]
        return float(first[0]), float(last[0] + last[1])

    def near(self, time: float) -> Tensor:
        """The interpolant of the step containing `time`, continued a little past the span
        (as `StepDense.near`)."""
        i = max(0, bisect.bisect_right(self.starts, self.tdir * time) - 1)
        rec = self[i]
        return self.solver.interpolate(rec, (time - rec.t0) / rec.dt)

    def at(self, time: float) -> Tensor:
        """The state at `time`; raises outside the solved span (as `Solution._at`)."""
        if not np.isfinite(time):
            raise ValueError(f"sol(t) needs a finite time; got {time}")
        (t_first, t_last), x = self.span, self.tdir * time
        lo, hi = self.tdir * t_first, self.tdir * t_last
        slack = max(abs(lo), abs(hi), 1.0) * 1e-13
        if x < lo - slack or x > hi + slack:
            raise ValueError(
                f"sol(t) at t={time} is outside the solved span "
                f"[{t_first}, {t_last}]; the interpolant does not extrapolate")
        i = max(0, bisect.bisect_right(self.starts, x) - 1)
        rec = self[i]
        theta = min(1.0, max(0.0, (time - rec.t0) / rec.dt))
        if theta == 1.0:
            return rec.u1
        if theta == 0.0:
            return rec.u0
        return self.solver.interpolate(rec, theta)
