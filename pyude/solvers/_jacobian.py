"""Batched Jacobians df/du, shape (*batch, n, n), and time derivatives df/dt, shape (*batch, n).

Every trajectory of a batch is independent and `f` takes any leading batch shape, so the
Jacobians of the whole batch come from ONE call of `f`, whichever way they are taken:
- automatic differentiation of a solve nothing is differentiated through (the common case):
  reverse mode, the n unit vectors as a vmapped batch of output cotangents, one backward pass
  for all rows;
- automatic differentiation inside a solve that is itself differentiated: forward mode, with
  dual numbers carrying the n + 1 unit tangents on a stacked state, so that J stays a
  function of u and of the parameters (reverse mode would have to take gradients with
  respect to a u that carries the whole solve's graph, and torch walks that graph on every
  call: quadratic in the number of steps);
- central differences, on a stacked state of 2n perturbed copies and two copies at
  perturbed times.
One call keeps the per-operation overhead of eager torch from multiplying by n.

Reverse mode is the default because in torch 2.13 an operation between a forward-mode dual
tensor and a plain one (a rate constant, a literal 0.04) costs about half a millisecond, as
the missing tangent goes through a Python decomposition: ROBER's Jacobian took 3.4 ms in
forward mode, 0.6 ms in reverse mode, 0.4 ms by differences.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.autograd.forward_ad as fwAD
from torch import Tensor


RHSFn = Callable[[float | Tensor, Tensor], Tensor]


# (J, df/dt, f): f(t, u) itself where the call that gave J computed it on the way, else None
WithF = tuple[Tensor, Tensor, "Tensor | None"]


def jacobian_autodiff(rhs: RHSFn, t: float, u: Tensor) -> WithF:
    """(J, df/dt, f) by automatic differentiation in one call of f: in forward mode when the
    result must stay differentiable (gradients on, and u or a parameter wants one), else
    in reverse mode (which also returns f, detached)."""
    if wants_graph(rhs, t, u):
        return _forward_mode(rhs, t, u)
    return _reverse_mode(rhs, t, u)


def _forward_mode(rhs: RHSFn, t: float, u: Tensor) -> WithF:
    n = u.shape[-1]
    eye = torch.eye(n + 1, dtype=u.dtype, device=u.device)
    shape = (n + 1,) + tuple(u.shape)
    tangent_u = eye[:, :n].reshape(n + 1, *([1] * (u.ndim - 1)), n).expand(shape).contiguous()
    times = torch.full((n + 1,) + (1,) * (u.ndim - 1), float(t), dtype=u.dtype,
                       device=u.device)
    with fwAD.dual_level():
        out = rhs(fwAD.make_dual(times, eye[:, n].reshape(times.shape)),
                  fwAD.make_dual(u.expand(shape).contiguous(), tangent_u))
        cols = fwAD.unpack_dual(out).tangent           # (n + 1, *batch, n)
    return cols[:n].movedim(0, -1), cols[n], None


def _reverse_mode(rhs: RHSFn, t: float, u: Tensor) -> WithF:
    """A private leaf for u and a time per trajectory; J and df/dt carry no graph."""
    n = u.shape[-1]
    with torch.enable_grad():
        uu = u.detach().requires_grad_(True)
        tt = torch.full(u.shape[:-1], float(t), dtype=u.dtype, device=u.device,
                        requires_grad=True)
        out = rhs(tt, uu)
        if not out.requires_grad:                 # f ignores u and t
            zero = torch.zeros_like(u)
            return zero.unsqueeze(-1).expand(*u.shape, n).clone(), zero, out
        rows = torch.eye(n, dtype=u.dtype, device=u.device)
        rows = rows.reshape(n, *([1] * (u.ndim - 1)), n).expand(n, *u.shape)
        try:
            du, dt = torch.autograd.grad(out, (uu, tt), rows, is_grads_batched=True,
                                         allow_unused=True)
        except RuntimeError:                      # an operation vmap cannot batch
            grads = [torch.autograd.grad(out, (uu, tt), row, retain_graph=True,
                                         allow_unused=True) for row in rows]
            du = _stack_rows([g[0] for g in grads], u)
            dt = _stack_rows([g[1] for g in grads], tt)
    jac = torch.zeros(*u.shape, n, dtype=u.dtype, device=u.device) if du is None \
        else du.movedim(0, -2)
    dfdt = torch.zeros_like(u) if dt is None else dt.movedim(0, -1)
    return jac, dfdt, out.detach()


def wants_graph(rhs: RHSFn, t: float, u: Tensor) -> bool:
    """Whether a step from u must be recorded for autograd: gradients on, and u or a
    tensor f reaches (a parameter, a network's weights) wanting one."""
    return torch.is_grad_enabled() and (u.requires_grad or _needs_outside_grad(rhs, t, u))


def _needs_outside_grad(rhs: RHSFn, t: float, u: Tensor) -> bool:
    """Whether f reaches a tensor that wants a gradient (a parameter, a network's weights)
    other than u: only then must J keep its graph. Keeping it for nothing would tie every
    later step to this one's private copy of u, and the graph would grow with the solve.
    Asked once per right-hand side (a solve's parameters do not change)."""
    known = getattr(rhs, "_needs_outside_grad", None)
    if known is None:
        with torch.enable_grad():
            known = bool(rhs(t, u.detach()).requires_grad)
        try:
            rhs._needs_outside_grad = known
        except AttributeError:
            pass
    return known


def _stack_rows(rows: list[Tensor | None], like: Tensor) -> Tensor | None:
    if all(r is None for r in rows):
        return None
    return torch.stack([torch.zeros_like(like) if r is None else r for r in rows])


def jacobian_finite_difference(rhs: RHSFn, t: float, u: Tensor) -> WithF:
    """(J, df/dt, f) by central differences with steps eps^(1/3) * max(|u_j|, 1) and
    eps^(1/3) * max(|t|, 1): the 2n perturbed states, the two perturbed times and u itself
    in one call of f, each row with its own time (as the reverse mode passes a tensor t).
    An f that needs t as a Python number is asked for df/dt by two more calls, and is
    remembered. Exact for quadratic right-hand sides such as mass-action kinetics."""
    step = torch.finfo(u.dtype).eps ** (1 / 3)
    ht = step * max(abs(float(t)), 1.0)
    n = u.shape[-1]
    h = step * u.detach().abs().clamp(min=1.0)                      # (*batch, n)
    eye = torch.eye(n, dtype=u.dtype, device=u.device)
    offsets = eye.reshape(n, *([1] * (u.ndim - 1)), n) * h           # (n, *batch, n)
    if not getattr(rhs, "stackable", True):
        states = torch.cat([u + offsets, u - offsets])
        out = torch.stack([rhs(t, state) for state in states])
        return _central_columns(out, h, n), time_derivative(rhs, t, u), None
    if getattr(rhs, "_float_time_only", False):
        out = rhs(t, torch.cat([u + offsets, u - offsets, u.unsqueeze(0)]))
        return _central_columns(out, h, n), time_derivative(rhs, t, u), out[2 * n]
    times = torch.tensor([float(t)] * (2 * n) + [t + ht, t - ht, float(t)], dtype=u.dtype,
                         device=u.device)
    states = torch.cat([u + offsets, u - offsets] + [u.unsqueeze(0)] * 3)
    try:
        out = rhs(times.reshape(-1, *([1] * (u.ndim - 1))).expand(states.shape[:-1]), states)
    except Exception:                      # f takes t as a Python number only
        rhs._float_time_only = True
        return jacobian_finite_difference(rhs, t, u)
    dfdt = (out[2 * n] - out[2 * n + 1]) / float(times[2 * n] - times[2 * n + 1])
    return _central_columns(out[:2 * n], h, n), dfdt, out[2 * n + 2]


def _central_columns(out: Tensor, h: Tensor, n: int) -> Tensor:
    """J from f at u + h_j e_j (first n rows of `out`) and u - h_j e_j (next n)."""
    cols = (out[:n] - out[n:2 * n]) / (2 * h.movedim(-1, 0).unsqueeze(-1))
    return cols.movedim(0, -1)


def time_derivative(rhs: RHSFn, t: float, u: Tensor) -> Tensor:
    """df/dt by central differences with step eps^(1/3) * max(|t|, 1); time stays a float."""
    ht = torch.finfo(u.dtype).eps ** (1 / 3) * max(abs(float(t)), 1.0)
    return (rhs(t + ht, u) - rhs(t - ht, u)) / (2 * ht)


def jacobian_and_f(rhs, t: float, u: Tensor, autodiff: bool) -> WithF:
    """(J, df/dt, f): the problem's own `jac` when it has one (df/dt then by central
    differences in t, and f None), else autodiff or central differences as the solver
    asks, with f(t, u) from the same call of f where that call can carry it."""
    jac_fn = getattr(rhs, "jac_fn", None)
    if jac_fn is not None:
        return rhs.jacobian(t, u), time_derivative(rhs, t, u), None
    if autodiff:
        return jacobian_autodiff(rhs, t, u)
    return jacobian_finite_difference(rhs, t, u)


def jacobian(rhs, t: float, u: Tensor, autodiff: bool) -> tuple[Tensor, Tensor]:
    """(J, df/dt) as `jacobian_and_f` takes them."""
    return jacobian_and_f(rhs, t, u, autodiff)[:2]
