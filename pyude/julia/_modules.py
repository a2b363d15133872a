"""NeuralODE and UDE fields on the Julia backend: the network crosses as a Lux Chain over the
same flat weights, in Lux's order, built differentiably so gradients flow back to every torch
parameter. `pyude.solve` (and so `NeuralODE`/`UDE`) reaches this through
`pyude.julia._solve.model_rhs`."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from ..nn import lux_layers, lux_spec
from ._compiled import compiled


def lux_flat(net: nn.Sequential) -> Tensor:
    """The weights as one differentiable vector in Lux order: per layer vec(W) column-major
    (W.T flattened row by row), then the bias. On the CPU, where the Julia solve runs."""
    parts = []
    for module in net:
        if isinstance(module, nn.Linear):
            parts += [module.weight.t().reshape(-1), module.bias]
    return torch.cat([x.cpu() for x in parts]).to(torch.float64)


def mlp_arguments(net: nn.Module) -> tuple:
    """The arguments of `PyUDE.build_mlp` for `net` (also the cache key of its Lux chain)."""
    layers = lux_spec(net)
    return (np.array([a for a, _, _, _ in layers], dtype=np.int64),
            np.array([b for _, b, _, _ in layers], dtype=np.int64),
            ",".join(act for _, _, act, _ in layers),
            np.array([s[0] for _, _, _, s in layers], dtype=np.float64),
            np.array([s[1] for _, _, _, s in layers], dtype=np.float64))


def _network(jl, net: nn.Module):
    args = mlp_arguments(net)
    key = ("mlp", *(a.tobytes() if isinstance(a, np.ndarray) else a for a in args))
    return compiled(key, lambda: jl.build_mlp(*args)), key


def physical_parameters(field, names: list[str]) -> Tensor:
    """The UDE's physical parameters in the order the generated code reads them (empty when
    it has none), on the CPU."""
    values = {**field.fixed, **dict(field.params.items())}
    if not names:
        return torch.zeros(0, dtype=torch.float64)
    return torch.stack([torch.as_tensor(values[name]).to(torch.float64).cpu()
                        for name in names])


def field_rhs(jl, field, n_states: int) -> tuple:
    """(Julia right-hand side, flat parameters [physical; weights]) of a NeuralODE or UDE."""
    from ..symbolic import to_julia, trace

    (model, axes, _), key = _network(jl, field.net)
    weights = lux_flat(field.net)
    if field.f is None:
        return compiled(("neural", key), lambda: jl.neural_rhs(model, axes)), weights
    values = {**field.fixed, **dict(field.params.items())}
    traced = trace(field.f, n_states, values, nn_outputs=lux_layers(field.net)[-1][1])
    if traced.nn.inputs != [traced.states]:
        raise ValueError("on backend='julia' the network must be called on the whole "
                         "state, nn(u), so that the Lux chain sees the same input")
    src = to_julia(traced, "pyude_ude")
    nphys = len(traced.params)
    rhs = compiled(("ude", src, key, nphys), lambda: jl.ude_rhs(
        jl.define_rhs(src, "pyude_ude"), model, axes, nphys))
    physical = physical_parameters(field, traced.param_names or [])
    return rhs, torch.cat([physical, weights])
