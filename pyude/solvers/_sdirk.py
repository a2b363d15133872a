"""The one generic ESDIRK stepper: an explicit first stage, then implicit stages with a shared
diagonal gamma, each solved by simplified Newton (`_newton.py`).

Stage i: z_i = dt f(t + c_i dt, u + sum_{j<i} a_ij z_j + gamma z_i); u1 = u + sum b_i z_i;
err = W^-1 sum b_err_i z_i, the error estimate filtered through W = I - gamma dt J as Hairer
and Wanner recommend for stiff problems (and OrdinaryDiffEq does), so stiff components do not
inflate it.

The Jacobian is kept between steps and refreshed when Newton fails or converges slowly (more
than SLOW_ITERATIONS iterations in a stage); W is refactored when dt changes. A Newton
correction below the state's round-off is convergence (`solve_stage`'s floor). A Newton
failure with a fresh Jacobian reports the step as not completed, and the loop halves dt.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor

from ._base import AbstractImplicitSolver, RHSFn, StepResult
from ._dense import StepRecord, axpy, hermite
from ._jacobian import jacobian
from ._newton import solve_stage
from ._linear import factorise
from ._tableau import AbstractTableau, as_tensor, stage_rows

_TOL = 1e-12
# A stage that needs more Newton iterations than this marks the Jacobian as stale.
SLOW_ITERATIONS = 3


@dataclass(frozen=True)
class ESDIRKTableau(AbstractTableau):
    """a: s x s lower triangular with a[0, 0] = 0 and a[i, i] = gamma for i >= 1."""

    a: np.ndarray
    b: np.ndarray
    c: np.ndarray
    b_err: np.ndarray
    _kind: ClassVar[str] = "ESDIRK"

    def __post_init__(self):
        self._set_arrays(("a",), ("b", "c", "b_err"))
        a = self.a
        if np.any(np.triu(a, 1) != 0) or a[0, 0] != 0 or len(set(np.diag(a)[1:])) != 1:
            raise ValueError("a must be lower triangular with an explicit first stage and one "
                             "diagonal value gamma")
        self._check_row_sums(a, self.c)
        self._check_weights(self.b, self.b_err)

    @property
    def gamma(self) -> float:
        return float(self.a[1, 1])

    @cached_property
    def stiffly_accurate(self) -> bool:
        return bool(np.array_equal(self.a[-1], self.b))


class _Cache:
    def __init__(self, rtol, atol):
        self.rtol, self.atol = rtol, atol
        self.J: Tensor | None = None
        self.fresh_at: tuple | None = None   # (t, id(u)) where J was computed
        self.lu = None
        self.lu_dt: float | None = None
        self.eta = 1.0
        self.slow = False          # the last step's Newton converged slowly: refresh J
        self.njacs = 0
        self.nw = 0
        self.nsolve = 0


class AbstractESDIRK(AbstractImplicitSolver):
    """An ESDIRK method given by its `ESDIRKTableau`, with Hermite dense output."""

    tableau: ClassVar[ESDIRKTableau]
    def init_cache(self, rtol=1e-3, atol=1e-6) -> _Cache:
        return _Cache(rtol, atol)

    def _refresh_jacobian(self, rhs: RHSFn, t: float, u: Tensor, cache: _Cache) -> None:
        cache.J, _ = jacobian(rhs, t, u, self.autodiff)
        cache.fresh_at = (t, id(u))
        cache.lu_dt = None
        cache.njacs += 1

    def _factor(self, dt: float, u: Tensor, cache: _Cache) -> bool:
        if cache.lu_dt == dt:
            return True
        n = u.shape[-1]
        eye = torch.eye(n, dtype=u.dtype, device=u.device)
        solve = factorise(eye - (dt * self.tableau.gamma) * cache.J)
        cache.nw += 1
        if solve is None:
            cache.lu_dt = None
            return False
        cache.lu, cache.lu_dt = solve, dt
        return True

    def _solve_w(self, cache: _Cache, rhs_vec: Tensor) -> Tensor:
        """W^-1 rhs_vec."""
        cache.nsolve += 1
        return cache.lu(rhs_vec)

    def step(self, rhs: RHSFn, t: float, u: Tensor, f0: Tensor, dt: float,
             cache: _Cache | None = None) -> StepResult:
        cache = cache if cache is not None else _Cache(1e-3, 1e-6)
        if cache.J is None or (cache.slow and cache.fresh_at != (t, id(u))):
            self._refresh_jacobian(rhs, t, u, cache)
        while True:
            result = self._attempt(rhs, t, u, f0, dt, cache)
            if result.ok or cache.fresh_at == (t, id(u)):
                return result
            # Newton failed with a Jacobian from an earlier step: refresh it and try again.
            self._refresh_jacobian(rhs, t, u, cache)

    def _attempt(self, rhs, t, u, f0, dt, cache) -> StepResult:
        tab = self.tableau
        if not self._factor(dt, u, cache):
            return StepResult(u1=u, err=None, f1=None, stages=[], ok=False)
        gamma = tab.gamma
        scale = cache.atol + cache.rtol * u.detach().abs()
        # The state's round-off in Newton's norm (the smallest of a batch's trajectories).
        floor = torch.finfo(u.dtype).eps * float(
            (u.detach() / scale).square().mean(dim=-1).sqrt().min())
        zs = [dt * f0]
        rows = stage_rows(tab, "a", u)
        cache.slow = False
        min_iterations = 1 if cache.fresh_at == (t, id(u)) else 2
        for i in range(1, tab.stages):
            tmp = axpy(u, 1.0, rows[i], zs)
            ti = t + tab.c_float[i] * dt

            def residual(z, tmp=tmp, ti=ti):
                return dt * rhs(ti, tmp + gamma * z) - z

            newton, cache.eta = solve_stage(residual, lambda r: self._solve_w(cache, r),
                                            zs[-1], scale, cache.eta, min_iterations,
                                            floor)
            if not newton.converged:
                return StepResult(u1=u, err=None, f1=None, stages=[], ok=False)
            cache.slow = cache.slow or newton.iterations > SLOW_ITERATIONS
            zs.append(newton.z)
        if tab.stiffly_accurate:
            u1 = axpy(u, 1.0, as_tensor(tab, "a", u)[-1], zs)    # row s holds gamma
            f1 = zs[-1] / dt
        else:
            u1 = axpy(u, 1.0, as_tensor(tab, "b", u), zs)
            f1 = None
        err = self._solve_w(cache, axpy(None, 1.0, as_tensor(tab, "b_err", u), zs))
        return StepResult(u1=u1, err=err, f1=f1, stages=zs)

    def interpolate(self, rec: StepRecord, theta: float) -> Tensor:
        return hermite(rec, theta)

