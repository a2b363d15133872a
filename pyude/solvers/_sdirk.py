"""The one generic ESDIRK stepper: an explicit first stage, then implicit stages with a shared
diagonal gamma, each solved by simplified Newton (`_newton.py`).

Stage i: z_i = dt f(t + c_i dt, u + sum_{j<i} a_ij z_j + gamma z_i); u1 = u + sum b_i z_i;
err = W^-1 sum b_err_i z_i, the error estimate filtered through W = I - gamma dt J as Hairer
and Wanner recommend for stiff problems (and OrdinaryDiffEq does), so stiff components do not
inflate it.

The Jacobian is kept between steps and refreshed when Newton fails or converges slowly (more
than SLOW_ITERATIONS iterations in a stage); W is refactored when dt changes. A Newton
failure with a fresh Jacobian reports the step as not completed, and the loop halves dt.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor

from .._norms import scaled_rms_on_host, to_host
from ._base import AbstractImplicitSolver, RHSFn, StepResult
from ._dense import StepRecord, axpy, hermite
from ._jacobian import jacobian, on_host
from ._newton import solve_stage
from ._linear import factorise, factorise_on_host
from ._tableau import _array, as_tensor, host_arrays, stage_rows

_TOL = 1e-12
# A stage that needs more Newton iterations than this marks the Jacobian as stale.
SLOW_ITERATIONS = 3


@dataclass(frozen=True)
class ESDIRKTableau:
    """a: s x s lower triangular with a[0, 0] = 0 and a[i, i] = gamma for i >= 1."""

    a: np.ndarray
    b: np.ndarray
    c: np.ndarray
    b_err: np.ndarray

    def __post_init__(self):
        a, b, c, e = _array(self.a, 2), _array(self.b, 1), _array(self.c, 1), _array(self.b_err, 1)
        s = b.shape[0]
        if a.shape != (s, s) or c.shape != (s,) or e.shape != (s,):
            raise ValueError(f"an ESDIRK tableau with {s} stages needs a {s}x{s} and {s} c, b_err")
        if np.any(np.triu(a, 1) != 0) or a[0, 0] != 0 or len(set(np.diag(a)[1:])) != 1:
            raise ValueError("a must be lower triangular with an explicit first stage and one "
                             "diagonal value gamma")
        if not np.allclose(a.sum(axis=1), c, rtol=0, atol=_TOL):
            raise ValueError(f"row sums of a {a.sum(axis=1)} differ from c {c}")
        if abs(b.sum() - 1) > _TOL or abs(e.sum()) > _TOL:
            raise ValueError("b must sum to 1 and b_err to 0")
        for name, value in (("a", a), ("b", b), ("c", c), ("b_err", e)):
            object.__setattr__(self, name, value)
        object.__setattr__(self, "c_float", tuple(float(x) for x in c))

    @property
    def gamma(self) -> float:
        return float(self.a[1, 1])

    @property
    def stages(self) -> int:
        return self.b.shape[0]

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
        self.lu_on_host = False    # whether `lu` takes numpy arrays (see `_attempt_on_host`)
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
        if cache.lu_dt == dt and not cache.lu_on_host:
            return True
        n = u.shape[-1]
        eye = torch.eye(n, dtype=u.dtype, device=u.device)
        solve = factorise(eye - (dt * self.tableau.gamma) * cache.J)
        cache.nw += 1
        if solve is None:
            cache.lu_dt = None
            return False
        cache.lu, cache.lu_dt, cache.lu_on_host = solve, dt, False
        return True

    def _solve_w(self, cache: _Cache, rhs_vec):
        """W^-1 rhs_vec, a tensor, or a flat numpy array on the host path."""
        cache.nsolve += 1
        return cache.lu(rhs_vec)

    def step(self, rhs: RHSFn, t: float, u: Tensor, f0: Tensor, dt: float,
             cache: _Cache | None = None) -> StepResult:
        cache = cache if cache is not None else _Cache(1e-3, 1e-6)
        if cache.J is None or (cache.slow and cache.fresh_at != (t, id(u))):
            self._refresh_jacobian(rhs, t, u, cache)
        attempt = self._attempt_on_host if on_host(rhs, t, u) else self._attempt
        while True:
            result = attempt(rhs, t, u, f0, dt, cache)
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
                                            zs[-1], scale, cache.eta, min_iterations)
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

    def _factor_on_host(self, dt: float, u: Tensor, cache: _Cache) -> bool:
        """`_factor` in numpy: W^-1 kept while dt and J stay."""
        if cache.lu_dt == dt and cache.lu_on_host:
            return True
        J = cache.J.detach().numpy()
        solve = factorise_on_host(np.eye(u.shape[-1], dtype=J.dtype)
                                  - (dt * self.tableau.gamma) * J)
        cache.nw += 1
        if solve is None:
            cache.lu_dt = None
            return False
        cache.lu, cache.lu_dt, cache.lu_on_host = solve, dt, True
        return True

    def _attempt_on_host(self, rhs, t, u, f0, dt, cache) -> StepResult:
        """`_attempt` with the stage sums, W^-1 and the Newton norms in numpy, for a CPU
        state nothing differentiates (see the Rosenbrock stepper's `_step_on_host`); f
        sees tensors that share memory with the arrays."""
        tab, shape, n = self.tableau, tuple(u.shape), u.shape[-1]
        if not self._factor_on_host(dt, u, cache):
            return StepResult(u1=u, err=None, f1=None, stages=[], ok=False)
        x = u.detach().numpy()
        a, b, b_err = host_arrays(tab, x.dtype, lambda tab: (tab.a, tab.b, tab.b_err))
        gamma, batch = tab.gamma, x.size // n

        def solve_w(r):
            return self._solve_w(cache, r)

        def norm(dz, scale):
            return scaled_rms_on_host(dz.reshape(scale.shape), scale)

        scale = (to_host(cache.atol) + to_host(cache.rtol) * np.abs(x)).reshape(batch, n)
        u_flat = x.reshape(-1)
        Z = np.empty((tab.stages, u_flat.size), dtype=x.dtype)          # the stages z_i
        Z[0] = dt * f0.detach().numpy().reshape(-1)
        cache.slow = False
        min_iterations = 1 if cache.fresh_at == (t, id(u)) else 2
        for i in range(1, tab.stages):
            tmp = u_flat + a[i, :i] @ Z[:i]
            ti = t + tab.c_float[i] * dt

            def residual(z, tmp=tmp, ti=ti):
                state = torch.from_numpy((tmp + gamma * z).reshape(shape))
                return dt * rhs(ti, state).numpy().reshape(-1) - z

            newton, cache.eta = solve_stage(residual, solve_w, Z[i - 1], scale, cache.eta,
                                            min_iterations, norm, float(np.finfo(x.dtype).eps))
            if not newton.converged:
                return StepResult(u1=u, err=None, f1=None, stages=[], ok=False)
            cache.slow = cache.slow or newton.iterations > SLOW_ITERATIONS
            Z[i] = newton.z
        weights = a[-1] if tab.stiffly_accurate else b     # (row s holds gamma)
        u1 = torch.from_numpy((u_flat + weights @ Z).reshape(shape))
        f1 = torch.from_numpy((Z[-1] / dt).reshape(shape)) if tab.stiffly_accurate else None
        err = torch.from_numpy(solve_w(b_err @ Z).reshape(shape))
        stages = list(torch.from_numpy(Z.reshape(tab.stages, *shape)).unbind(0))
        return StepResult(u1=u1, err=err, f1=f1, stages=stages)

    def interpolate(self, rec: StepRecord, theta: float) -> Tensor:
        return hermite(rec, theta)

