"""The one generic explicit Runge-Kutta stepper, driven by a `ButcherTableau`."""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor

from ._base import AbstractSolver, RHSFn, StepResult
from ._dense import StepRecord, axpy, hermite
from ._tableau import ButcherTableau, as_tensor, stage_rows


class AbstractERK(AbstractSolver):
    """An explicit Runge-Kutta method given by its tableau.

    Subclasses set `tableau` and `order` (and `embedded_order`, `dense_order` for the docs
    and tests); the stepping, error estimate and dense output are all here.
    """

    tableau: ClassVar[ButcherTableau]
    embedded_order: ClassVar[int | None] = None
    dense_order: ClassVar[int] = 3

    @property
    def adaptive(self) -> bool:
        return self.tableau.b_err is not None

    def step(self, rhs: RHSFn, t: float, u: Tensor, f0: Tensor, dt: float,
             cache: None = None) -> StepResult:
        tab = self.tableau
        rows = stage_rows(tab, "a", u)
        ks, ui = [f0], u
        for i in range(1, tab.stages):
            ui = axpy(u, dt, rows[i], ks) if tab.row_used[i] else u
            ks.append(rhs(t + tab.c_float[i] * dt, ui))
        if tab.fsal:
            u1, f1 = ui, ks[-1]     # the last stage was evaluated at the new state
        else:
            u1, f1 = axpy(u, dt, as_tensor(tab, "b", u), ks), None
        err = None if tab.b_err is None else axpy(None, dt, as_tensor(tab, "b_err", u), ks)
        return StepResult(u1=u1, err=err, f1=f1, stages=ks)

    def interpolate(self, rec: StepRecord, theta: float) -> Tensor:
        dense = self.tableau.dense
        if dense is None:
            return hermite(rec, theta)
        return axpy(rec.u0, rec.dt, dense.weights(theta), self._dense_stages(rec))

    def _dense_stages(self, rec: StepRecord) -> list[Tensor]:
        """The step's stages, f(t1, u1), then the interpolant's extra stages (made once)."""
        cached = rec.cache.get("dense_stages")
        if cached is not None:
            return cached
        dense = self.tableau.dense
        ks = list(rec.stages)
        if not self.tableau.fsal:
            ks.append(rec.f1)
        for row, c in zip(dense.extra_a, dense.extra_c):
            ui = axpy(rec.u0, rec.dt, row[: len(ks)], ks)
            ks.append(rec.rhs(rec.t0 + float(c) * rec.dt, ui))
        rec.cache["dense_stages"] = ks
        return ks


