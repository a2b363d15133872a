"""The one generic explicit Runge-Kutta stepper, driven by a `ButcherTableau`."""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor

from ._base import AbstractSolver, RHSFn, StepResult
from ._dense import StepRecord, hermite, lincomb
from ._tableau import ButcherTableau


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
        ks = [f0]
        last = tab.stages - 1
        for i in range(1, tab.stages):
            ui = u + dt * lincomb(tab.a[i, :i], ks) if tab.a[i, :i].any() else u
            ks.append(rhs(t + float(tab.c[i]) * dt, ui))
        if tab.fsal:
            # The last stage was evaluated at the new state: reuse that sum exactly.
            u1 = u + dt * lincomb(tab.a[last, :last], ks)
            f1 = ks[-1]
        else:
            u1 = u + dt * lincomb(tab.b, ks)
            f1 = None
        err = None if tab.b_err is None else dt * lincomb(tab.b_err, ks)
        return StepResult(u1=u1, err=err, f1=f1, stages=ks)

    def interpolate(self, rec: StepRecord, theta: float) -> Tensor:
        dense = self.tableau.dense
        if dense is None:
            return hermite(rec, theta)
        step = lincomb(dense.weights(theta), self._dense_stages(rec))
        return rec.u0 if step is None else rec.u0 + rec.dt * step

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
            ui = rec.u0 + rec.dt * lincomb(row[: len(ks)], ks)
            ks.append(rec.rhs(rec.t0 + float(c) * rec.dt, ui))
        rec.cache["dense_stages"] = ks
        return ks


