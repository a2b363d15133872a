"""Batched Jacobians df/du, shape (*batch, n, n), and time derivatives df/dt, shape (*batch, n).

Every trajectory of a batch is independent and `f` takes any leading batch shape, so the n
columns of every trajectory's Jacobian and df/dt come from ONE call of `f` on a stacked
state of shape (n + 1, *batch, n): with forward-mode dual numbers carrying the unit tangents
(automatic differentiation), or with the 2(n + 1) perturbed states of central differences.
One call keeps the per-operation overhead of eager torch from multiplying by n.
(Finite differences take df/dt from two more calls, so that time stays a float.)
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.autograd.forward_ad as fwAD
from torch import Tensor

RHSFn = Callable[[float | Tensor, Tensor], Tensor]


def _stacked_time(t: float, u: Tensor, rows: int) -> Tensor:
    return torch.full((rows,) + (1,) * (u.ndim - 1), float(t), dtype=u.dtype, device=u.device)


def jacobian_autodiff(rhs: RHSFn, t: float, u: Tensor) -> tuple[Tensor, Tensor]:
    """(J, df/dt) by forward-mode automatic differentiation in one call of f. The result
    stays differentiable with respect to the parameters (for backpropagation through stiff
    steps)."""
    n = u.shape[-1]
    eye = torch.eye(n + 1, dtype=u.dtype, device=u.device)
    shape = (n + 1,) + tuple(u.shape)
    tangent_u = eye[:, :n].reshape(n + 1, *([1] * (u.ndim - 1)), n).expand(shape).contiguous()
    times = _stacked_time(t, u, n + 1)
    with fwAD.dual_level():
        out = rhs(fwAD.make_dual(times, eye[:, n].reshape(times.shape)),
                  fwAD.make_dual(u.expand(shape).contiguous(), tangent_u))
        cols = fwAD.unpack_dual(out).tangent           # (n + 1, *batch, n)
    return cols[:n].movedim(0, -1), cols[n]


def jacobian_finite_difference(rhs: RHSFn, t: float, u: Tensor) -> tuple[Tensor, Tensor]:
    """(J, df/dt) by central differences with steps eps^(1/3) * max(|u_j|, 1): the 2n
    perturbed states in one call of f, and df/dt from two more (time stays a float, so any
    f works); exact for quadratic right-hand sides such as mass-action kinetics."""
    n = u.shape[-1]
    step = torch.finfo(u.dtype).eps ** (1 / 3)
    h = step * u.detach().abs().clamp(min=1.0)                      # (*batch, n)
    eye = torch.eye(n, dtype=u.dtype, device=u.device)
    offsets = eye.reshape(n, *([1] * (u.ndim - 1)), n) * h           # (n, *batch, n)
    states = torch.cat([u + offsets, u - offsets])
    if getattr(rhs, "stackable", True):
        out = rhs(t, states)
    else:
        out = torch.stack([rhs(t, state) for state in states])
    cols = (out[:n] - out[n:]) / (2 * h.movedim(-1, 0).unsqueeze(-1))
    return cols.movedim(0, -1), time_derivative(rhs, t, u)


def time_derivative(rhs: RHSFn, t: float, u: Tensor) -> Tensor:
    """df/dt by central differences with step eps^(1/3) * max(|t|, 1); time stays a float."""
    ht = torch.finfo(u.dtype).eps ** (1 / 3) * max(abs(float(t)), 1.0)
    return (rhs(t + ht, u) - rhs(t - ht, u)) / (2 * ht)


def jacobian(rhs, t: float, u: Tensor, autodiff: bool) -> tuple[Tensor, Tensor]:
    """(J, df/dt): the problem's own `jac` when it has one (df/dt then by central
    differences in t), else autodiff or central differences as the solver asks."""
    jac_fn = getattr(rhs, "jac_fn", None)
    if jac_fn is not None:
        return rhs.jacobian(t, u), time_derivative(rhs, t, u)
    if autodiff:
        return jacobian_autodiff(rhs, t, u)
    return jacobian_finite_difference(rhs, t, u)
