"""The compiled model of the gradient path: the loop's functions and the model's
vector-Jacobian product, compiled once per model (a plain traced model, or a NeuralODE/UDE
field with its network as compiled layers), and the packing of the differentiable tensors
into the kernels' flat parameter vector and back."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from ..._field import VectorField
from ..._problem import ODEProblem
from ...sensitivity._adjoint import param_spec
from ...symbolic import trace
from ._adjoint_codegen import VJP_SIG, NetworkLayout, network_model_source, vjp_source
from ._adjoint_continuous import ADJOINT_SOURCE
from ._cache import load
from ._model import CompiledModel, FunctionAddress, compile_model
from ._network import NetworkNotCompilable, layer_spec
from ._types import DFDT_SIG, JAC_SIG, RHS_SIG


from ._typed import typed


@dataclass
class GradientModel:
    """A model compiled for the gradient path: the loop's functions, the VJP, and how the
    flat parameter vector is built from the problem's tensors."""

    functions: tuple          # rhs, jac, dfdt as the loop takes them
    vjp: FunctionAddress
    kind: str                 # "plain" or "network"
    param_names: list[str] | None = None     # a network model's physical parameters
    reads_t: bool = False
    source: str = ""          # the module defining vjp (and, for a network, rhs, jac, dfdt)
    _adjoint: tuple | None = None

    @property
    def adjoint_functions(self) -> tuple:
        """rhs, jac, dfdt of the continuous adjoint system (compiled on first use)."""
        if self._adjoint is None:
            module = load(self.source + ADJOINT_SOURCE)
            self._adjoint = (typed(FunctionAddress(module.adj_rhs, RHS_SIG)),
                             typed(FunctionAddress(module.adj_jac, JAC_SIG)),
                             typed(FunctionAddress(module.adj_dfdt, DFDT_SIG)))
        return self._adjoint


_GRAD_MODELS: dict[tuple, GradientModel] = {}


def _is_field(f) -> bool:
    return isinstance(f, VectorField)


def _field_values(field) -> dict[str, Tensor]:
    return {**field.fixed, **dict(field.params.items())}


def _network_model(problem: ODEProblem) -> GradientModel:
    field = problem.f
    spec = layer_spec(field.net)
    values = _field_values(field)
    key = ("network", field.f, problem.n_states, tuple(sorted(values)), spec.tobytes())
    model = _GRAD_MODELS.get(key)
    if model is None:
        m = int(spec[-1, 1])
        f = field.f if field.f is not None else (lambda u, p, t, net: net(u))
        traced = trace(f, problem.n_states, values or None, nn_outputs=m)
        if not traced.nn.inputs:
            raise NetworkNotCompilable("the model never calls its network")
        offset = len(traced.params)
        source, reads_t = network_model_source(traced, NetworkLayout(spec, offset))
        module = load(source)
        model = GradientModel(
            (typed(FunctionAddress(module.rhs, RHS_SIG)),
             typed(FunctionAddress(module.jac, JAC_SIG)),
             typed(FunctionAddress(module.dfdt, DFDT_SIG))),
            typed(FunctionAddress(module.vjp, VJP_SIG)), "network", list(traced.param_names or []),
            reads_t, source)
        _GRAD_MODELS[key] = model
    return model


def _plain_model(problem: ODEProblem) -> GradientModel:
    compiled: CompiledModel = compile_model(problem)
    key = ("plain", compiled.source)
    model = _GRAD_MODELS.get(key)
    if model is None:
        traced = trace(problem.f, problem.n_states, problem.p)
        source = vjp_source(traced)
        module = load(source)
        model = GradientModel(tuple(typed(f) for f in compiled.functions),
                              typed(FunctionAddress(module.vjp, VJP_SIG)),
                              "plain", None, compiled.reads_t, source)
        _GRAD_MODELS[key] = model
    return model


def gradient_model(problem: ODEProblem) -> GradientModel:
    """The compiled model with its VJP (traced and compiled once per model)."""
    if _is_field(problem.f):
        return _network_model(problem)
    return _plain_model(problem)


def compiled_network_reason(problem: ODEProblem) -> str | None:
    """Why a model holding a network cannot run compiled, or None when it can."""
    if not _is_field(problem.f):
        return ("f is a torch.nn.Module other than a NeuralODE's or UDE's field; the numba "
                "backend compiles networks inside NeuralODE and UDE models only; use "
                "backend='native'")
    try:
        gradient_model(problem)
    except NetworkNotCompilable as err:
        return f"{err}; it trains on backend='native'"
    except Exception as err:  # noqa: BLE001 (any failure to trace or print is a reason)
        return (f"the model does not trace to a compilable form ({type(err).__name__}: "
                f"{err}); use backend='native'")
    return None


def network_functions(problem: ODEProblem) -> tuple[tuple, np.ndarray]:
    """For a solve without gradient of a NeuralODE/UDE field: (rhs, jac, dfdt) as the loop
    kernel takes them, and p (physical parameters, then the weights) as one float64 row."""
    model = gradient_model(problem)
    return model.functions, _pack(*param_tensors(problem, model))


def flat_params(problem: ODEProblem, model: GradientModel) -> Tensor:
    """p as the kernels read it, built differentiably from the problem's tensors (for
    checks; the solve itself packs `param_tensors` without a graph, see `_pack`)."""
    tensors, kinds = param_tensors(problem, model)
    parts = [x.t().reshape(-1) if k == "W" else x.reshape(-1) for x, k in zip(tensors, kinds)]
    if not parts:
        return torch.zeros(0, dtype=torch.float64)
    return torch.cat([x.to(torch.float64) for x in parts])


def param_tensors(problem: ODEProblem, model: GradientModel) -> tuple[list[Tensor], list]:
    """The tensors p is packed from, in p's order, and how each is laid out: "v" (its
    entries in order) or "W" (a Linear weight, stored transposed: Lux's column-major)."""
    if model.kind == "network":
        field = problem.f
        values = _field_values(field)
        tensors = [torch.as_tensor(values[name]) for name in model.param_names]
        kinds = ["v"] * len(tensors)
        for module in field.net:
            if isinstance(module, nn.Linear):
                tensors += [module.weight, module.bias]
                kinds += ["W", "v"]
        return tensors, kinds
    spec = param_spec(problem)
    return list(spec.p_tensors), ["v"] * len(spec.p_tensors)


def _pack(tensors: list[Tensor], kinds: list) -> np.ndarray:
    parts = [x.detach().numpy().T.ravel() if k == "W" else x.detach().numpy().ravel()
             for x, k in zip(tensors, kinds)]
    return np.concatenate(parts).astype(np.float64) if parts else np.zeros(0)


def _unpack(gp: np.ndarray, tensors: list[Tensor], kinds: list, wanted) -> list:
    """dL/dp split onto the tensors p was packed from (views of one tensor; a Linear
    weight's, stored transposed, made contiguous as torch's own gradients are)."""
    flat = torch.from_numpy(gp)
    parts = flat.split([x.numel() for x in tensors])
    out = []
    for part, x, k, want in zip(parts, tensors, kinds, wanted):
        if not want:
            out.append(None)
        elif k == "W":
            out.append(part.view(x.shape[1], x.shape[0]).t().contiguous().to(x.dtype))
        else:
            out.append(part.view(x.shape).to(x.dtype))
    return out


def needs_gradient(problem: ODEProblem) -> bool:
    """Whether a solve must record a gradient: grad mode on and an input requiring grad."""
    if not torch.is_grad_enabled():
        return False
    tensors = [problem.u0, *param_spec(problem).all]
    return any(x.requires_grad for x in tensors)
