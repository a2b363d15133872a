"""Gradients through numba solves, handed back to torch by one `torch.autograd.Function`
whose forward is the compiled solve and whose backward is the compiled adjoint.

What is differentiable is what the torch backend differentiates (`param_spec`): `u0`, the
tensors of `p`, and the weights of a network inside the model (a `NeuralODE`'s or `UDE`'s
field; the network compiled by `_network`). All of them reach the kernels as two flat
float64 vectors, u0 and p (physical parameters, then the network's weights in Lux order),
built from the torch tensors differentiably, so autograd maps the flat gradient back onto
every tensor.

`sensealg` means what it means on the torch backend:
- `DirectAdjoint()` (the default): the discrete adjoint of the accepted steps, equal to
  backpropagation through the same steps up to round-off (explicit Runge-Kutta methods);
- the continuous adjoints are not compiled yet, and are refused with a message naming
  `backend="native"`, as are `DirectAdjoint()` on stiff methods, checkpointing, and
  batches.

Hooks in the backend's front (`_backend.py`), not yet added there:

    # in `solve`, first line: inputs that require grad take the gradient path
    from ._gradient import needs_gradient, solve_with_gradient
    if needs_gradient(problem):
        return solve_with_gradient(problem, solver, options, sensealg)

and in `_refuse._input_reason`, the requires-grad refusal goes (this module refuses what it
cannot differentiate) and a `UDE`/`NeuralODE` field passes when `compiled_network_reason`
returns None:

    from ._gradient import compiled_network_reason
    if isinstance(problem.f, nn.Module):
        reason = compiled_network_reason(problem)
        if reason is not None:
            return reason
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..._loop import LoopOptions
from ..._problem import ODEProblem
from ..._solution import Solution
from ...sensitivity import DirectAdjoint
from ...sensitivity._adjoint import param_spec
from ...solvers._base import AbstractSolver
from ...symbolic import trace
from . import _loop as lp
from ._adjoint import erk_adjoint
from ._adjoint_codegen import VJP_SIG, NetworkLayout, network_model_source, vjp_source
from ._cache import load
from ._model import CompiledModel, FunctionAddress, compile_model
from ._network import NetworkNotCompilable, layer_spec, lux_flat, n_weights
from ._types import DFDT_SIG, JAC_SIG, RHS_SIG


class GradientNotSupported(ValueError):
    """This gradient cannot be computed on the numba backend; the message says why and
    names the torch backend."""


@dataclass
class GradientModel:
    """A model compiled for the gradient path: the loop's functions, the VJP, and how the
    flat parameter vector is built from the problem's tensors."""

    functions: tuple          # rhs, jac, dfdt as the loop takes them
    vjp: FunctionAddress
    kind: str                 # "plain" or "network"
    param_names: list[str] | None = None     # a network model's physical parameters
    reads_t: bool = False


_GRAD_MODELS: dict[tuple, GradientModel] = {}


def _is_field(f) -> bool:
    return (isinstance(f, nn.Module) and hasattr(f, "adapter") and hasattr(f, "net")
            and hasattr(f, "fixed") and hasattr(f, "params"))


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
            (FunctionAddress(module.rhs, RHS_SIG), FunctionAddress(module.jac, JAC_SIG),
             FunctionAddress(module.dfdt, DFDT_SIG)),
            FunctionAddress(module.vjp, VJP_SIG), "network", list(traced.param_names or []),
            reads_t)
        _GRAD_MODELS[key] = model
    return model


def _plain_model(problem: ODEProblem) -> GradientModel:
    compiled: CompiledModel = compile_model(problem)
    key = ("plain", compiled.source)
    model = _GRAD_MODELS.get(key)
    if model is None:
        traced = trace(problem.f, problem.n_states, problem.p)
        module = load(vjp_source(traced))
        model = GradientModel(compiled.functions, FunctionAddress(module.vjp, VJP_SIG),
                              "plain", None, compiled.reads_t)
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
    except Exception as err:        # any failure to trace or print is a reason
        return (f"the model does not trace to a compilable form ({type(err).__name__}: "
                f"{err}); use backend='native'")
    return None


def flat_params(problem: ODEProblem, model: GradientModel) -> Tensor:
    """p as the kernels read it, built differentiably from the problem's tensors."""
    if model.kind == "network":
        field = problem.f
        values = _field_values(field)
        parts = [torch.as_tensor(values[name], dtype=torch.float64).reshape(1)
                 for name in model.param_names]
        parts.append(lux_flat(field.net))
        return torch.cat(parts)
    spec = param_spec(problem)
    if not spec.p_tensors:
        return torch.zeros(0, dtype=torch.float64)
    if spec.kind == "tensor":
        return spec.p_tensors[0].to(torch.float64).reshape(-1)
    return torch.stack([x.to(torch.float64).reshape(()) for x in spec.p_tensors])


def needs_gradient(problem: ODEProblem) -> bool:
    """Whether a solve must record a gradient: grad mode on and an input requiring grad."""
    if not torch.is_grad_enabled():
        return False
    tensors = [problem.u0, *param_spec(problem).all]
    return any(x.requires_grad for x in tensors)


class _Run:
    """One forward solve's arrays, kept for its backward pass."""

    def __init__(self, problem, solver, options, model, method):
        self.problem, self.solver, self.options = problem, solver, options
        self.model, self.method = model, method
        self.result = None
        self.p = None

    def forward(self, u0: np.ndarray, p: np.ndarray) -> np.ndarray:
        from ._backend import _inputs
        self.p = np.ascontiguousarray(p, dtype=np.float64)
        inputs = _inputs(self.problem, self.method, self.options, True)
        self.saveat = inputs[6]
        self.result = lp.solve_one(*self.model.functions, self.p,
                                   np.ascontiguousarray(u0, dtype=np.float64), *inputs)
        ts, us, out = self.result[:3]
        return us[:int(out[lp.OUT_NSAVED])].copy()

    def backward(self, g_us: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ts, us, out, info, steps, step_u, step_f, step_k, families = self.result
        nsteps = int(out[lp.OUT_NSTEPS])
        tb = np.empty(nsteps + 1)
        tb[:nsteps] = steps[:nsteps, 0]
        tb[nsteps] = info[lp.INFO_T]
        A, b, c, _b_err, poly, exa, exc, flags = self.method.erk
        has_saveat = int(self.options.saveat is not None)
        return erk_adjoint(self.model.functions[0], self.model.vjp, self.p, steps[:nsteps],
                           tb, step_u[:nsteps + 1], step_k[:nsteps], self.saveat, has_saveat,
                           np.ascontiguousarray(g_us, dtype=np.float64), A, b, c, poly, exa,
                           exc, flags)


class NumbaSolve(torch.autograd.Function):
    """us = solve(u0, p) on the numba backend; backward by the compiled adjoint."""

    @staticmethod
    def forward(ctx, run: _Run, u0: Tensor, p: Tensor) -> Tensor:
        ctx.run = run
        return torch.from_numpy(run.forward(u0.detach().numpy(), p.detach().numpy()))

    @staticmethod
    def backward(ctx, g: Tensor):
        gu0, gp = ctx.run.backward(g.detach().to(torch.float64).contiguous().numpy())
        return None, torch.from_numpy(gu0), torch.from_numpy(gp)


def _refuse(sensealg, solver: AbstractSolver, problem: ODEProblem) -> None:
    from ._methods import family_of
    if sensealg is not None and not isinstance(sensealg, DirectAdjoint):
        raise GradientNotSupported(
            f"sensealg={sensealg!r} is not compiled on the numba backend, which computes "
            f"gradients with DirectAdjoint() (the discrete adjoint of the accepted steps); "
            f"use sensealg=DirectAdjoint() or backend='native' for {sensealg!r}")
    if isinstance(sensealg, DirectAdjoint) and sensealg.checkpointing:
        raise GradientNotSupported(
            "DirectAdjoint(checkpointing=True) restarts the step-size sequence at every saved "
            "time on the torch backend; the numba backend keeps one sequence; use "
            "DirectAdjoint() or backend='native'")
    if family_of(solver) != lp.FAMILY_ERK:
        raise GradientNotSupported(
            f"the numba backend differentiates explicit Runge-Kutta solves only; "
            f"{solver!r} is not one; use backend='native' to differentiate it")
    if problem.batch_shape:
        raise GradientNotSupported(
            "the numba backend differentiates one trajectory at a time; solve the batch "
            "on backend='native' or loop over its trajectories")


def solve_with_gradient(problem: ODEProblem, solver: AbstractSolver, options: LoopOptions,
                        sensealg: Any = None) -> Solution:
    """A numba solve whose saved states `sol.u` carry a gradient to u0, the tensors of p and
    a network's weights (as `solve`'s options; `sensealg` as on the torch backend)."""
    from ._backend import _single_solution
    from ._methods import pack_method
    _refuse(sensealg, solver, problem)
    model = gradient_model(problem)
    method = pack_method(solver)
    p = flat_params(problem, model)
    run = _Run(problem, solver, options, model, method)
    u = NumbaSolve.apply(run, problem.u0.reshape(-1).to(torch.float64), p)
    sol = _single_solution(problem, solver, method, options, run.result)
    sol.u = u
    return sol
