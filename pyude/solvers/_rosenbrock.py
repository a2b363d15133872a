"""The one generic Rosenbrock stepper, driven by a tableau in Hairer-Wanner's transformed form.

With W = I / (dt gamma) - J (J = df/du at the step's start, T = df/dt), stage i solves

    W U_i = f(t + c_i dt, u + sum_j A_ij U_j) + sum_j (C_ij / dt) U_j + dt d_i T,

and u1 = u + sum_i b_i U_i, err = sum_i b_err_i U_i. One LU factorisation of W per step
serves every stage. This is OrdinaryDiffEq's `RodasTableau` form; methods published in the
standard form (alpha, Gamma) are converted by `from_standard`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from ._base import AbstractImplicitSolver, RHSFn, StepResult
from ._dense import StepRecord, axpy, hermite
from ._jacobian import jacobian_and_f
from ._linear import factorise
from ._tableau import AbstractTableau, DenseTableau

_TOL = 1e-12


@dataclass(frozen=True)
class RosenbrockTableau(AbstractTableau):
    """The transformed form: A and C strictly lower triangular, gamma, the stage times c,
    d (the df/dt coefficients), b and b_err (weights on the transformed stages U_i, which
    need not sum to 1)."""

    A: np.ndarray
    C: np.ndarray
    gamma: float
    c: np.ndarray
    d: np.ndarray
    b: np.ndarray
    b_err: np.ndarray
    dense: DenseTableau | None = None
    _kind: ClassVar[str] = "Rosenbrock"

    def __post_init__(self):
        s = self._set_arrays(("A", "C"), ("c", "d", "b", "b_err"))
        A, C, c = self.A, self.C, self.c
        if np.any(np.triu(A) != 0) or np.any(np.triu(C) != 0):
            raise ValueError("A and C must be strictly lower triangular")
        # In standard form alpha = A Gamma with Gamma^-1 = I/gamma - C; its rows sum to c.
        alpha = A @ np.linalg.inv(np.eye(s) / self.gamma - C)
        if not np.allclose(alpha.sum(axis=1), c, rtol=0, atol=_TOL):
            raise ValueError(f"the stage times c {c} do not match A and C "
                             f"({alpha.sum(axis=1)})")
        # A stage whose time and state equal the previous stage's reuses its f.
        new_f = [True] + [not (c[i] == c[i - 1] and np.array_equal(A[i, :i - 1], A[i - 1, :i - 1])
                                and A[i, i - 1] == 0.0) for i in range(1, s)]
        object.__setattr__(self, "new_f", tuple(new_f))

    @cached_property
    def fsal(self) -> bool:
        """The last stage is evaluated at the new state (so its f is the next step's f0)."""
        return (self.c[-1] == 1.0 and self.b[-1] == 0.0 and np.allclose(self.A[-1], self.b))


def from_standard(gamma: float, alpha, Gamma, b, b_err, d=None) -> dict[str, Any]:
    """Transformed-form coefficients from the standard form
    (I - dt gamma J) k_i = f(u + dt sum alpha_ij k_j) + dt J sum Gamma_ij k_j + dt d_i T,
    u1 = u + dt sum b_i k_i. Returns A, C, c, d, b, b_err and Gamma^-1 (for dense output)."""
    alpha, Gamma = np.asarray(alpha, float), np.asarray(Gamma, float)
    inv = np.tril(np.linalg.inv(Gamma))      # exactly lower triangular, as it is in theory
    return dict(
        A=np.tril(alpha @ inv, -1), C=np.tril(-inv, -1), gamma=gamma, c=alpha.sum(axis=1),
        d=Gamma.sum(axis=1) if d is None else np.asarray(d, float),
        b=np.asarray(b, float) @ inv, b_err=np.asarray(b_err, float) @ inv, gamma_inv=inv)


def rodas_dense(b: np.ndarray, H: np.ndarray) -> DenseTableau:
    """Rodas's stiff-aware interpolant (1-th) u0 + th (u1 + (1-th)(K1 + th K2 + th^2 K3)),
    K_j = sum_i H_ji U_i, as weights on the stages U_i in powers of theta."""
    rows = list(np.asarray(H, float)) + [np.zeros_like(b)] * (3 - len(H))
    h1, h2, h3 = rows
    return DenseTableau(poly=np.stack([b + h1, h2 - h1, h3 - h2, -h3], axis=1))


class _Cache:
    """Per-solve state: the last Jacobian, reused when a rejected step retries from the same
    point, the tableau as tensors of the solve's dtype and device, and the work counters."""

    def __init__(self):
        self.key: tuple | None = None
        self.J: Tensor | None = None
        self.dT: Tensor | None = None
        self.consts: tuple | None = None
        self.njacs = 0
        self.nw = 0
        self.nsolve = 0


class AbstractRosenbrock(AbstractImplicitSolver):
    """A Rosenbrock(-Wanner) method given by its `RosenbrockTableau`. Linearly implicit: one
    Jacobian and one factorisation of W per step, no Newton iteration.

    The stages are combined by one matrix product each (stacked earlier stages times a row
    of coefficients) rather than a sum of scaled tensors: on small systems every torch call
    costs microseconds, and a sum over seven stages is fourteen calls."""

    tableau: ClassVar[RosenbrockTableau]
    def init_cache(self, rtol=None, atol=None) -> _Cache:
        return _Cache()

    def jacobian(self, rhs: RHSFn, t: float, u: Tensor, f0: Tensor, cache: _Cache):
        if cache.key != (t, id(u)):
            self._take_jacobian(rhs, t, u, cache)
        return cache.J, cache.dT

    def _take_jacobian(self, rhs: RHSFn, t: float, u: Tensor, cache: _Cache) -> Tensor | None:
        cache.J, cache.dT, f = jacobian_and_f(rhs, t, u, self.autodiff)
        cache.key = (t, id(u))
        cache.njacs += 1
        return f

    def derivative_at(self, rhs: RHSFn, t: float, u: Tensor, cache: _Cache) -> Tensor:
        """The next step's Jacobian, taken now (the loop asks only where a step follows):
        the call of f that takes it by differences or reverse mode also gives f(t, u), one
        call of f fewer per step. Other ways (the problem's `jac`, forward mode) call f."""
        f = self._take_jacobian(rhs, t, u, cache)
        return rhs(t, u) if f is None else f

    def _consts(self, u: Tensor, cache: _Cache) -> tuple:
        """(I, [b; b_err]) as tensors, made once per solve."""
        if cache.consts is None or cache.consts[0].dtype != u.dtype or \
                cache.consts[0].device != u.device:
            tab = self.tableau
            eye = torch.eye(u.shape[-1], dtype=u.dtype, device=u.device)
            weights = torch.tensor(np.stack([tab.b, tab.b_err]), dtype=u.dtype,
                                   device=u.device)
            cache.consts = (eye, weights)
        return cache.consts

    def step(self, rhs: RHSFn, t: float, u: Tensor, f0: Tensor, dt: float,
             cache: _Cache | None = None) -> StepResult:
        cache = cache if cache is not None else _Cache()
        J, dT = self.jacobian(rhs, t, u, f0, cache)
        tab = self.tableau
        eye, weights = self._consts(u, cache)
        solve = factorise(eye / (dt * tab.gamma) - J)
        cache.nw += 1
        if solve is None:
            return StepResult(u1=u, err=None, f1=None, stages=[], ok=False)
        # Row i mixes [dT, U_1 .. U_i-1] into the stage's state (A) and its right-hand side
        # (dt d_i for dT, C / dt for the stages).
        mix = np.zeros((tab.stages, 2, tab.stages + 1))
        mix[:, 0, 1:] = tab.A
        mix[:, 1, 0] = dt * tab.d
        mix[:, 1, 1:] = tab.C / dt
        mix = torch.tensor(mix, dtype=u.dtype, device=u.device)
        stages: list[Tensor] = []
        du = f0
        for i in range(tab.stages):
            mixed = (mix[i, :, :i + 1] @ torch.stack([dT, *stages]).reshape(i + 1, -1))
            if tab.new_f[i]:
                du = rhs(t + tab.c_float[i] * dt, u + mixed[0].view_as(u)) if i else f0
            stages.append(solve(du + mixed[1].view_as(u)))
        cache.nsolve += tab.stages
        combined = weights @ torch.stack(stages).reshape(tab.stages, -1)
        u1 = u + combined[0].view_as(u)
        err = combined[1].view_as(u)
        return StepResult(u1=u1, err=err, f1=du if tab.fsal else None, stages=stages)

    def interpolate(self, rec: StepRecord, theta: float) -> Tensor:
        dense = self.tableau.dense
        if dense is None:
            return hermite(rec, theta)
        return axpy(rec.u0, 1.0, dense.weights(theta), rec.stages)

