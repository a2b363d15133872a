"""Networks inside models: the `nn(u)` adapter, the RBF activation, and the subset of
`torch.nn` that can cross to Julia as a Lux `Chain` over one flat parameter vector."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor, nn

# torch activation module -> PyUDE activation name; Linear layers become Lux Dense layers.
# nn.GELU and nn.Softplus are read from the instance (`_activation`): GELU's exact (erf) and
# tanh forms differ, and Softplus carries beta and threshold.
ACTIVATIONS: dict[type, str] = {
    nn.Tanh: "tanh", nn.ReLU: "relu", nn.Sigmoid: "sigmoid", nn.Softplus: "softplus",
    nn.GELU: "gelu_erf", nn.Identity: "identity",
}
DEFAULT_SOFTPLUS = (1.0, 20.0)    # torch's nn.Softplus() beta and threshold


def _activation(module: nn.Module) -> tuple[str, tuple[float, float]]:
    """(PyUDE activation name, (softplus beta, threshold)) of a torch activation module."""
    if isinstance(module, nn.GELU):
        return ("gelu_tanh" if module.approximate == "tanh" else "gelu_erf"), DEFAULT_SOFTPLUS
    if isinstance(module, nn.Softplus):
        return "softplus", (float(module.beta), float(module.threshold))
    return ACTIVATIONS[type(module)], DEFAULT_SOFTPLUS


class RBF(nn.Module):
    """The radial basis activation exp(-x^2) of the UDE paper's networks."""

    def forward(self, x: Tensor) -> Tensor:
        return torch.exp(-x.square())


ACTIVATIONS[RBF] = "rbf"


class NetworkAdapter:
    """What `nn` is inside a model: takes state components (a sequence, or a tensor with
    components first), runs the network on the stacked state `(*batch, n_in)`, and returns
    the outputs as components again, so `m1, m2 = nn(u)` reads like the equations."""

    def __init__(self, net: nn.Module):
        self.net = net

    def __call__(self, u: Sequence[Any] | Tensor) -> Tensor:
        if isinstance(u, Tensor):
            x = u.movedim(0, -1)
        else:
            parts = [c if isinstance(c, Tensor) else torch.as_tensor(c) for c in u]
            x = torch.stack(torch.broadcast_tensors(*parts), dim=-1)
        return self.net(x).movedim(-1, 0)


def lux_spec(net: nn.Module) -> list[tuple[int, int, str, tuple[float, float]]]:
    """`(in, out, activation, (softplus beta, threshold))` for each Dense layer of a network
    in the Julia subset, or a ValueError naming the first layer outside it."""
    if not isinstance(net, nn.Sequential):
        raise ValueError(f"a network crossing to Julia must be an nn.Sequential of nn.Linear "
                         f"and element-wise activations; got {type(net).__name__}")
    layers: list[list] = []
    for i, module in enumerate(net):
        if isinstance(module, nn.Linear):
            if module.bias is None:
                raise ValueError(f"layer {i} (nn.Linear without bias) has no Lux Dense form "
                                 f"in pyude's Julia subset; use bias=True")
            layers.append([module.in_features, module.out_features, "identity",
                           DEFAULT_SOFTPLUS])
        elif type(module) in ACTIVATIONS and layers and layers[-1][2] == "identity":
            layers[-1][2:] = _activation(module)
        else:
            raise ValueError(
                f"layer {i} ({type(module).__name__}) is outside the subset that crosses to "
                f"Julia: nn.Linear followed by at most one of "
                f"{', '.join(sorted(t.__name__ for t in ACTIVATIONS))}. It still trains on "
                f"the native backend.")
    return [tuple(layer) for layer in layers]


def lux_layers(net: nn.Module) -> list[tuple[int, int, str]]:
    """`(in, out, activation)` for each Dense layer of a network in the Julia subset, or a
    ValueError naming the first layer outside it."""
    return [(a, b, act) for a, b, act, _ in lux_spec(net)]


def to_flat(net: nn.Sequential) -> np.ndarray:
    """The weights in Lux/ComponentArrays order: per Dense layer vec(W) (column-major, W of
    shape (out, in) as in torch) then b."""
    lux_layers(net)
    chunks = []
    for module in net:
        if isinstance(module, nn.Linear):
            w = module.weight.detach().cpu().to(torch.float64).numpy()
            chunks += [w.ravel(order="F"), module.bias.detach().cpu().to(torch.float64).numpy()]
    return np.concatenate(chunks)


def from_flat(net: nn.Sequential, flat: np.ndarray) -> list[Tensor]:
    """Per-parameter tensors (in `net.parameters()` order) from a Lux-ordered flat vector,
    for weights or for their gradients."""
    out, i = [], 0
    for module in net:
        if isinstance(module, nn.Linear):
            n_out, n_in = module.weight.shape
            w = flat[i:i + n_out * n_in].reshape((n_out, n_in), order="F")
            i += n_out * n_in
            b = flat[i:i + n_out]
            i += n_out
            out += [torch.as_tensor(np.ascontiguousarray(w)), torch.as_tensor(b.copy())]
    if i != flat.size:
        raise ValueError(f"flat vector has {flat.size} entries; the network has {i}")
    return out
