"""NeuralODE and UDE on the Julia backend: the network crosses as a Lux Chain over the same
flat weights, in Lux's order, built differentiably so gradients flow back to every torch
parameter."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from ..nn import lux_layers
from ._runtime import init
from ._solve import SENSEALG, JuliaProblem, julia_algorithm_name, run


def lux_flat(net: nn.Sequential) -> Tensor:
    """The weights as one differentiable vector in Lux order: per layer vec(W) column-major
    (W.T flattened row by row), then the bias."""
    parts = []
    for module in net:
        if isinstance(module, nn.Linear):
            parts += [module.weight.t().reshape(-1), module.bias]
    return torch.cat(parts).to(torch.float64)


def _network(jl, net: nn.Module):
    layers = lux_layers(net)
    ins = np.array([a for a, _, _ in layers], dtype=np.int64)
    outs = np.array([b for _, b, _ in layers], dtype=np.int64)
    return jl.build_mlp(ins, outs, ",".join(act for _, _, act in layers)), layers


def solve_module(module, u0: Tensor, times: Tensor) -> Tensor:
    """The trajectory of a NeuralODE or UDE at `times`, solved by DifferentialEquations.jl."""
    from ..symbolic import to_julia, trace

    jl = init()
    field = module.field
    (model, axes, _), layers = _network(jl, field.net)
    weights = lux_flat(field.net)
    if field.f is None:
        rhs = jl.neural_rhs(model, axes)
        theta = weights
    else:
        values = {**field.fixed, **dict(field.params.items())}
        traced = trace(field.f, u0.shape[-1], values, nn_outputs=layers[-1][1])
        if traced.nn.inputs != [traced.states]:
            raise ValueError("on backend='julia' the network must be called on the whole "
                             "state, nn(u), so that the Lux chain sees the same input")
        src = to_julia(traced, "pyude_ude")
        rhs = jl.ude_rhs(jl.define_rhs(src, "pyude_ude"), model, axes, len(traced.params))
        physical = torch.stack([torch.as_tensor(values[name], dtype=torch.float64)
                                for name in traced.param_names])
        theta = torch.cat([physical, weights])
    opts = module.options
    solver = module.solver
    sensealg = module.sensealg
    jp = JuliaProblem(
        rhs=rhs, t0=float(times[0]), t1=float(times[-1]),
        saveat=times.detach().cpu().numpy().astype(np.float64),
        algorithm=jl.algorithm(julia_algorithm_name(solver) if solver is not None
                               else "AutoTsit5:Rosenbrock23", getattr(solver, "autodiff", True)),
        sensealg=jl.sensitivity(SENSEALG[type(sensealg).__name__] if sensealg is not None
                                else "GaussAdjoint", "ZygoteVJP"),
        rtol=float(opts.get("rtol", 1e-3)), atol=float(opts.get("atol", 1e-6)),
        maxiters=int(opts.get("maxiters", 100_000)))
    tdir = 1.0 if times[-1] >= times[0] else -1.0
    sol = run(jp, u0, theta, solver, tdir)
    sol.raise_for_status()
    return sol.u
