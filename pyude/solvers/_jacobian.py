"""Batched Jacobians df/du, shape (*batch, n, n), and time derivatives df/dt, shape (*batch, n).

Every trajectory of a batch is independent, so one Jacobian-vector product with the unit
tangent e_j in every trajectory gives column j of all the trajectories' Jacobians at once:
`torch.func.vmap` runs the n + 1 products (n columns and df/dt) as one batched call of `f`.
Finite differences take the same columns two evaluations each.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

RHSFn = Callable[[float | Tensor, Tensor], Tensor]


def jacobian_autodiff(rhs: RHSFn, t: float, u: Tensor) -> tuple[Tensor, Tensor]:
    """(J, df/dt) by forward-mode automatic differentiation (torch.func.jvp under vmap)."""
    n = u.shape[-1]
    eye = torch.eye(n + 1, dtype=u.dtype, device=u.device)
    tangents_u = eye[:, :n].reshape(n + 1, *([1] * (u.ndim - 1)), n).expand(n + 1, *u.shape)
    tangents_t = eye[:, n]
    t_tensor = torch.as_tensor(t, dtype=u.dtype, device=u.device)

    def column(vu: Tensor, vt: Tensor) -> Tensor:
        return torch.func.jvp(lambda x, tt: rhs(tt, x), (u, t_tensor), (vu, vt))[1]

    cols = torch.func.vmap(column)(tangents_u, tangents_t)     # (n + 1, *batch, n)
    return cols[:n].movedim(0, -1), cols[n]


def jacobian_finite_difference(rhs: RHSFn, t: float, u: Tensor) -> tuple[Tensor, Tensor]:
    """(J, df/dt) by central differences with steps eps^(1/3) * max(|u_j|, 1): 2(n + 1)
    evaluations of f, exact for quadratic right-hand sides such as mass-action kinetics."""
    step = torch.finfo(u.dtype).eps ** (1 / 3)
    cols = []
    for j in range(u.shape[-1]):
        h = step * u[..., j].detach().abs().clamp(min=1.0)
        plus, minus = u.clone(), u.clone()
        plus[..., j] = u[..., j] + h
        minus[..., j] = u[..., j] - h
        cols.append((rhs(t, plus) - rhs(t, minus)) / (2 * h).unsqueeze(-1))
    ht = step * max(abs(t), 1.0)
    dT = (rhs(t + ht, u) - rhs(t - ht, u)) / (2 * ht)
    return torch.stack(cols, dim=-1), dT


def jacobian(rhs, t: float, u: Tensor, autodiff: bool) -> tuple[Tensor, Tensor]:
    """(J, df/dt): the problem's own `jac` when it has one (df/dt then by central
    differences in t), else autodiff or central differences as the solver asks."""
    jac_fn = getattr(rhs, "jac_fn", None)
    if jac_fn is not None:
        ht = torch.finfo(u.dtype).eps ** (1 / 3) * max(abs(t), 1.0)
        return rhs.jacobian(t, u), (rhs(t + ht, u) - rhs(t - ht, u)) / (2 * ht)
    if autodiff:
        return jacobian_autodiff(rhs, t, u)
    return jacobian_finite_difference(rhs, t, u)
