"""Solves on the Julia backend, with gradients back into torch through one autograd.Function."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .._model import Params
from .._retcode import ReturnCode
from .._solution import Solution, Stats
from ._runtime import init

# pyude's sensitivity algorithms -> SciMLSensitivity's; backpropagation through the steps has
# no Julia counterpart here, so it maps to SciML's recommended GaussAdjoint.
SENSEALG = {"DirectAdjoint": "GaussAdjoint", "InterpolatingAdjoint": "InterpolatingAdjoint",
            "QuadratureAdjoint": "QuadratureAdjoint", "GaussAdjoint": "GaussAdjoint",
            "BacksolveAdjoint": "BacksolveAdjoint"}


def julia_algorithm_name(solver) -> str:
    """The name `PyUDE.algorithm` understands (AutoTsit5 composites as "AutoTsit5:Stiff")."""
    nonstiff = getattr(solver, "nonstiff", None)
    if nonstiff is not None:
        return f"Auto{type(nonstiff).__name__}:{type(solver.stiff).__name__}"
    return type(solver).__name__


def flat_parameters(p: Any) -> Tensor:
    """The problem's parameters as one 1-D tensor, in the order the generated code reads."""
    if p is None:
        return torch.zeros(0, dtype=torch.float64)
    values = list(p) if isinstance(p, Params) else [p]
    parts = []
    for v in values:
        if isinstance(p, Params) and v.ndim > 0:
            raise ValueError("the Julia backend takes one value per named parameter; batched "
                             "parameters run on backend='native'")
        parts.append(v.reshape(-1))
    if isinstance(p, Tensor) and p.ndim > 1:
        raise ValueError("the Julia backend takes a 1-D parameter vector; batched parameters "
                         "run on backend='native'")
    return torch.cat(parts).to(torch.float64)


@dataclass
class JuliaProblem:
    """What the Julia side needs for one solve: a right-hand side handle and the options."""

    rhs: Any
    t0: float
    t1: float
    saveat: np.ndarray
    algorithm: Any
    sensealg: Any
    rtol: float
    atol: float
    maxiters: int


class _JuliaSolve(torch.autograd.Function):
    """forward: the Julia solve; backward: SciMLSensitivity's pullback with the cotangent."""

    @staticmethod
    def forward(ctx, jp: JuliaProblem, info: dict, u0: Tensor, theta: Tensor):
        jl = init()
        args = (jp.rhs, _np(u0), jp.t0, jp.t1, _np(theta), jp.saveat, jp.algorithm)
        if ctx.needs_input_grad[2] or ctx.needs_input_grad[3]:
            ys, retcode, stats, back = jl.solve_pullback(*args, jp.sensealg, jp.atol, jp.rtol,
                                                         jp.maxiters)
            ctx.back = back
        else:
            ys, _, retcode, stats = jl.solve_forward(*args, jp.atol, jp.rtol, jp.maxiters)
        states = np.array(np.asarray(ys).T, dtype=np.float64)     # (T, n), a copy
        info.update(retcode=str(retcode), stats=tuple(int(s) for s in stats))
        ctx.sizes = (u0.numel(), theta.numel())
        return torch.from_numpy(states).to(dtype=u0.dtype, device=u0.device)

    @staticmethod
    def backward(ctx, grad_states: Tensor):
        jl = init()
        cotangent = np.asfortranarray(grad_states.detach().cpu().numpy().astype(np.float64).T)
        du0, dp = jl.apply_pullback(ctx.back, cotangent, *ctx.sizes)
        ctx.back = None
        g_u0 = torch.from_numpy(np.array(np.asarray(du0), dtype=np.float64))
        g_p = torch.from_numpy(np.array(np.asarray(dp), dtype=np.float64))
        return None, None, g_u0.to(grad_states), g_p.to(grad_states)


def _np(x: Tensor) -> np.ndarray:
    return np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float64)


def run(jp: JuliaProblem, u0: Tensor, theta: Tensor, solver, tdir: float) -> Solution:
    """Solve every trajectory of a batch (one Julia solve each) and assemble a Solution."""
    flat_u0 = u0.reshape(-1, u0.shape[-1])
    states, infos = [], []
    for row in flat_u0:
        info: dict = {}
        states.append(_JuliaSolve.apply(jp, info, row, theta))
        infos.append(info)
    bad = next((i for i in infos if i["retcode"] != "Success"), None)
    retcode = ReturnCode.Success if bad is None else \
        getattr(ReturnCode, bad["retcode"], ReturnCode.Failure)
    stats = Stats(*[sum(i["stats"][k] for i in infos) for k in range(6)])
    length = min(s.shape[0] for s in states)
    u = torch.stack([s[:length] for s in states], dim=1).reshape(length, *u0.shape)
    t = torch.as_tensor(jp.saveat[:length], dtype=u0.dtype, device=u0.device)
    message = retcode.value if bad is None else (
        f"Julia returned {bad['retcode']}. {retcode.value}")
    return Solution(t=t, u=u, retcode=retcode, message=message, stats=stats, solver=solver)


def solve(problem, solver, *, saveat, rtol, atol, maxiters, sensealg, autodiff=True):
    """`pyude.solve(..., backend="julia")`: trace the model, print it as Julia, solve there."""
    from ..symbolic import to_julia, trace

    if saveat is None:
        raise ValueError("backend='julia' needs `saveat` (the times to return)")
    jl = init()
    traced = trace(problem.f, problem.n_states, problem.p)
    rhs = jl.ode_rhs(jl.define_rhs(to_julia(traced, "pyude_rhs"), "pyude_rhs"))
    theta = flat_parameters(problem.p)
    jp = JuliaProblem(
        rhs=rhs, t0=problem.tspan[0], t1=problem.tspan[1],
        saveat=np.asarray(saveat, dtype=np.float64),
        algorithm=jl.algorithm(julia_algorithm_name(solver), bool(autodiff)),
        sensealg=jl.sensitivity(SENSEALG[type(sensealg).__name__], "ZygoteVJP"),
        rtol=float(rtol), atol=float(atol), maxiters=int(maxiters))
    tdir = 1.0 if problem.tspan[1] >= problem.tspan[0] else -1.0
    return run(jp, problem.u0, theta, solver, tdir)


def to_diffeqpy(problem):
    """The problem as a Julia `ODEProblem` built from its generated code, for diffeqpy's `de`
    (callbacks, ensembles, SDEs and the rest of DifferentialEquations.jl):

        prob = pyude.julia.to_diffeqpy(problem)
        from diffeqpy import de
        sol = de.solve(prob, de.Tsit5())
    """
    from ..symbolic import to_julia, trace

    jl = init()
    traced = trace(problem.f, problem.n_states, problem.p)
    f = jl.ode_rhs(jl.define_rhs(to_julia(traced, "pyude_rhs"), "pyude_rhs"))
    return jl.make_problem(f, _np(problem.u0.reshape(-1)), float(problem.tspan[0]),
                           float(problem.tspan[1]), _np(flat_parameters(problem.p)))
