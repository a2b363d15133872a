"""The vector field of a `NeuralODE` or `UDE` as a module: known physics, network and
trainable parameters in one `f(u, p, t)`, so that the adjoints see every weight and the
backends can tell a network field from a plain model."""

from __future__ import annotations

from typing import Callable

from torch import Tensor, nn

from ._model import Params
from .nn import NetworkAdapter


class VectorField(nn.Module):
    """The vector field as a module, so that the adjoints see every trainable weight."""

    def __init__(self, f: Callable, net: nn.Module, params: nn.ParameterDict | None,
                 fixed: dict[str, Tensor]):
        super().__init__()
        self.f, self.net = f, net
        self.params = params if params is not None else nn.ParameterDict()
        self.fixed = fixed
        self.adapter = NetworkAdapter(net)

    def forward(self, u, _p, t):
        if self.f is None:
            return self.adapter(u)
        values = {**self.fixed, **dict(self.params.items())}
        return self.f(u, Params(values), t, self.adapter)
