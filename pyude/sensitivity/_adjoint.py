"""The machinery shared by the continuous adjoints: one `torch.autograd.Function` whose forward
solves without recording a graph and whose backward integrates the adjoint ODE
da/dt = -a^T df/du from the last saved time back to t0, adding the loss's cotangent at every
saved time, while the parameter gradient dL/dp = int a^T df/dp dt accumulates."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import Tensor, nn

from .._model import RHS, Params
from .._problem import ODEProblem


@dataclass
class ParamSpec:
    """The differentiable tensors of a problem and how to rebuild its `p` from them."""

    kind: str                      # "none", "tensor" or "params"
    names: list[str]
    p_tensors: list[Tensor]        # the problem's parameters, in order
    module_params: list[Tensor]    # weights of an nn.Module right-hand side

    @property
    def all(self) -> list[Tensor]:
        return [*self.p_tensors, *self.module_params]

    def rebuild(self, p_tensors: list[Tensor]) -> Tensor | Params | None:
        if self.kind == "tensor":
            return p_tensors[0]
        if self.kind == "params":
            return Params(dict(zip(self.names, p_tensors)))
        return None


_SCOPE = threading.local()


@contextmanager
def one_solve():
    """The span of one `solve` call, in which the problem cannot change: `param_spec` (a
    walk over a network's parameters, asked for by every check on the way down, about 15 us
    each) is worked out once per problem. Per thread, so concurrent solves keep their own."""
    outer = getattr(_SCOPE, "specs", None)
    if outer is None:
        _SCOPE.specs = {}
    try:
        yield
    finally:
        if outer is None:
            _SCOPE.specs = None


def param_spec(problem: ODEProblem) -> ParamSpec:
    """The problem's differentiable tensors (within `one_solve`, worked out once)."""
    specs = getattr(_SCOPE, "specs", None)
    if specs is None:
        return _param_spec(problem)
    hit = specs.get(id(problem))
    if hit is None or hit[0] is not problem:
        hit = specs[id(problem)] = (problem, _param_spec(problem))
    return hit[1]


def _param_spec(problem: ODEProblem) -> ParamSpec:
    p = problem.p
    modules = list(problem.f.parameters()) if isinstance(problem.f, nn.Module) else []
    modules = [m for m in modules if m.requires_grad]
    if isinstance(p, Tensor):
        return ParamSpec("tensor", [], [p], modules)
    if isinstance(p, Params):
        return ParamSpec("params", p.names(), list(p), modules)
    return ParamSpec("none", [], [], modules)


def needs_grad(problem: ODEProblem) -> bool:
    """Whether autograd is on and anything the solve reads requires a gradient."""
    if not torch.is_grad_enabled():
        return False
    return problem.u0.requires_grad or any(x.requires_grad for x in param_spec(problem).all)


class _NoGradient(torch.autograd.Function):
    """Passes a failed solve's states through, and refuses to differentiate them."""

    @staticmethod
    def forward(ctx, us: Tensor, message: str):
        ctx.message = message
        return us.view_as(us)

    @staticmethod
    def backward(ctx, grad):
        raise RuntimeError(ctx.message)


def failed_forward(message: str) -> str:
    return f"the forward solve failed, so its gradient is undefined: {message}"


def refuse_gradient(sol):
    """`sol` with states whose backward pass raises, when the solve failed (a partial
    solution, `throw=False`): its gradient is not the gradient of anything the user asked."""
    if not sol.success and sol.u.requires_grad:
        sol.u = _NoGradient.apply(sol.u, failed_forward(sol.message))
    return sol


def vjp(f: Callable, spec: ParamSpec, p_tensors: list[Tensor], t: float, u: Tensor,
        a: Tensor, want_params: bool) -> tuple[Tensor, list[Tensor | None]]:
    """(a^T df/du, [a^T df/dtheta for every differentiable tensor]) at (t, u)."""
    with torch.enable_grad():
        uu = u.detach().requires_grad_(True)
        leaves = [x.detach().requires_grad_(True) for x in p_tensors] if want_params else \
            [x.detach() for x in p_tensors]
        rhs = RHS(f, spec.rebuild(leaves))
        out = rhs(t, uu)
        targets = [uu] + ([*leaves, *spec.module_params] if want_params else [])
        grads = torch.autograd.grad(out, targets, grad_outputs=a, allow_unused=True)
    param_grads = [None if g is None else g for g in grads[1:]]
    return grads[0], param_grads


def zeros_like_all(tensors: list[Tensor]) -> list[Tensor]:
    return [torch.zeros_like(x) for x in tensors]


def flatten(tensors: list[Tensor]) -> Tensor:
    return torch.cat([x.reshape(-1) for x in tensors]) if tensors else torch.zeros(0)


def unflatten(vec: Tensor, like: list[Tensor]) -> list[Tensor]:
    out, i = [], 0
    for x in like:
        out.append(vec[i:i + x.numel()].reshape(x.shape))
        i += x.numel()
    return out


def fill_none(grads: list[Tensor | None], like: list[Tensor]) -> list[Tensor]:
    return [torch.zeros_like(x) if g is None else g for g, x in zip(grads, like)]


def sum_to(grad: Tensor, like: Tensor) -> Tensor:
    """Reduce a broadcast gradient back to the shape of the tensor it belongs to."""
    while grad.ndim > like.ndim:
        grad = grad.sum(0)
    for i, (g, s) in enumerate(zip(grad.shape, like.shape)):
        if s == 1 and g != 1:
            grad = grad.sum(i, keepdim=True)
    return grad


def adjoint_solver(solver: Any) -> Any:
    """The solver for an augmented adjoint system whose right-hand side calls autograd: the
    same method, every setting kept, taking its Jacobian by finite differences."""
    return solver.with_autodiff(False)
