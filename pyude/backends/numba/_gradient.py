"""Gradients through numba solves, handed back to torch by one `torch.autograd.Function`
(`NumbaSolve`) whose forward is the compiled solve and whose backward is a compiled adjoint.

What is differentiable is what the torch backend differentiates (`param_spec`): `u0`, the
tensors of `p`, and the weights of a network inside the model (a `NeuralODE`'s or `UDE`'s
field, the network compiled by `_network`). The kernels see two flat float64 vectors, u0
and p (physical parameters, then the network's weights in Lux order); the Function takes
the torch tensors themselves, packs p without a graph and unpacks dL/dp onto each tensor.

`sensealg` means what it means on the torch backend:
- `DirectAdjoint()` (the default): the discrete adjoint of the accepted steps (`_adjoint`),
  equal to backpropagation through the same steps up to round-off; explicit Runge-Kutta
  methods. Memory is the forward dense output (every step's stages), not checkpointed.
- `InterpolatingAdjoint()`, `QuadratureAdjoint()`, `GaussAdjoint()`: the adjoint ODE solved
  backwards by the loop kernel with the forward method, stiff methods and switches included
  (`_adjoint_continuous`). All three integrate dL/dp inside the adjoint system; they differ
  on the torch backend only in how that integral is taken, so they agree here to the
  tolerance.
- Anything else (`BacksolveAdjoint()`, `DirectAdjoint(checkpointing=True)`, DirectAdjoint on
  a stiff method) is refused with a message naming what to use instead, `backend='native'`
  among it. A batch of initial states sharing p is differentiated trajectory by trajectory
  (each with its own steps), the parameter gradients summed; batched parameters are
  refused. The trajectories run one after another: the kernels hold the GIL, and a
  parallel batch (the forward's `_batch` kernel with an adjoint per row) is not built.

Hooks the backend's front needs (files of the forward backend, not changed here):

    # _backend.solve, first lines: inputs that require grad take the gradient path
    from ._gradient import needs_gradient, solve_with_gradient
    if needs_gradient(problem):
        return solve_with_gradient(problem, solver, options, sensealg)

    # _refuse._input_reason: drop the requires-grad refusal (this module refuses what it
    # cannot differentiate, by name), and let a NeuralODE/UDE field through when its
    # network compiles:
    if isinstance(problem.f, nn.Module):
        from ._gradient import compiled_network_reason
        reason = compiled_network_reason(problem)
        if reason is not None:
            return reason
    # _refuse._model_reason: for such a field, skip `compile_model` (which traces f
    # without its network; compiled_network_reason has compiled it). _backend.solve, for a
    # solve without grad:
    if isinstance(problem.f, nn.Module):
        from ._gradient import network_functions
        functions, p_row = network_functions(problem)    # in place of compile_model's
        params = p_row[None, :]                          # and pack_params'

    # _model.FunctionAddress: the kernels' call overhead drops by about 100 us a solve when
    # each address carries its numba type, made once (see `TypedAddress` here):
    #     self.numba_type = types.FunctionType(signature)
    # with `@typeof_impl.register(FunctionAddress)` returning `val.numba_type`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numba import types
from numba.core.types.function_type import WrapperAddressProtocol
from numba.core.typing.typeof import typeof_impl
from torch import Tensor, nn

from ..._field import VectorField
from ..._options import SolveOptions
from ..._problem import ODEProblem
from ..._solution import Solution
from ...sensitivity import DirectAdjoint
from ...sensitivity._adjoint import param_spec
from ...solvers._base import AbstractSolver
from ...symbolic import trace
from . import _loop as lp
from ._adjoint import erk_adjoint
from ._adjoint_codegen import VJP_SIG, NetworkLayout, network_model_source, vjp_source
from ._adjoint_continuous import ADJOINT_SOURCE, all_dense_stages, pack_adjoint
from ._cache import load
from ._model import CompiledModel, FunctionAddress, compile_model
from ._network import NetworkNotCompilable, layer_spec
from ._types import DFDT_SIG, JAC_SIG, RHS_SIG


class TypedAddress(WrapperAddressProtocol):
    """A compiled function's address with its numba type computed once. numba types a
    `WrapperAddressProtocol` argument by building its `FunctionType` from the signature on
    every call of a kernel (about 6-12 us per function argument, measured on a loaded
    machine; the loop kernel takes six); the type registered below is read back instead."""

    def __init__(self, address):
        self._inner = address                     # keeps the compiled code alive
        self._address = address.__wrapper_address__()
        self._signature = address.signature()
        self.numba_type = types.FunctionType(self._signature)

    def __wrapper_address__(self) -> int:
        return self._address

    def signature(self):
        return self._signature


@typeof_impl.register(TypedAddress)
def _typeof_typed_address(val, c):
    return val.numba_type


_TYPED: dict[int, tuple] = {}


def typed(value):
    """`value` as a `TypedAddress` when it is a function address (one per address object,
    kept), else unchanged."""
    if isinstance(value, WrapperAddressProtocol) and not isinstance(value, TypedAddress):
        hit = _TYPED.get(id(value))
        if hit is None or hit[0] is not value:
            hit = _TYPED[id(value)] = (value, TypedAddress(value))
        return hit[1]
    return value


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
    out, i = [], 0
    for x, k, want in zip(tensors, kinds, wanted):
        size = x.numel()
        if want:
            g = gp[i:i + size]
            if k == "W":
                g = g.reshape(x.shape[1], x.shape[0]).T
            out.append(torch.from_numpy(np.ascontiguousarray(g).reshape(x.shape)).to(x.dtype))
        else:
            out.append(None)
        i += size
    return out


def needs_gradient(problem: ODEProblem) -> bool:
    """Whether a solve must record a gradient: grad mode on and an input requiring grad."""
    if not torch.is_grad_enabled():
        return False
    tensors = [problem.u0, *param_spec(problem).all]
    return any(x.requires_grad for x in tensors)


class _Run:
    """One forward solve's arrays, kept for its backward pass."""

    def __init__(self, model: GradientModel, method, inputs: tuple, has_saveat: bool,
                 continuous: _Continuous | None = None):
        self.model, self.method, self.inputs = model, method, inputs
        self.has_saveat = int(has_saveat)
        self.continuous = continuous
        self.result = None
        self.p = None

    def forward(self, u0: np.ndarray, p: np.ndarray) -> np.ndarray:
        self.p = np.ascontiguousarray(p, dtype=np.float64)
        self.result = lp.solve_one(*self.model.functions, self.p,
                                   np.ascontiguousarray(u0, dtype=np.float64), *self.inputs)
        out = self.result[2]
        return self.result[1][:int(out[lp.OUT_NSAVED])].copy()

    def backward(self, g_us: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.continuous is not None:
            return self.continuous.backward(self, g_us)
        _ts, _us, out, info, steps, step_u, _step_f, step_k, _families = self.result
        nsteps = int(out[lp.OUT_NSTEPS])
        tb = np.empty(nsteps + 1)
        tb[:nsteps] = steps[:nsteps, 0]
        tb[nsteps] = info[lp.INFO_T]
        A, b, c, _b_err, poly, exa, exc, flags = self.method.erk
        return erk_adjoint(self.model.functions[0], self.model.vjp, self.p, steps[:nsteps],
                           tb, step_u[:nsteps + 1], step_k[:nsteps], self.inputs[6],
                           self.has_saveat, np.ascontiguousarray(g_us, dtype=np.float64),
                           A, b, c, poly, exa, exc, flags)


def _erk_dense(method) -> tuple[np.ndarray, int]:
    """The explicit method's dense polynomial for the adjoint's u(t), and its stages."""
    A, _b, _c, _e, poly, _xa, _xc, _flags = method.erk
    if poly.size == 0:
        return np.zeros((0, 0)), A.shape[0]
    return poly, A.shape[0]


class _Continuous:
    """The backward pass of a continuous adjoint: the adjoint system (`_adjoint_continuous`)
    solved by the loop kernel with the forward method, from the last saved time back to t0,
    interval by interval between saved times (where the loss's cotangents jump in)."""

    def __init__(self, problem: ODEProblem, solver, options: SolveOptions, sensealg):
        self.solver, self.options, self.sensealg = solver, options, sensealg
        self.n = problem.n_states

    def _options(self, t0: float, t1: float, size: int):
        import dataclasses
        o = self.options

        def scalar(x):
            return float(torch.as_tensor(x).min()) if isinstance(x, Tensor) else float(
                np.min(x))
        return dataclasses.replace(o, t0=t0, t1=t1, saveat=[t1], tstops=[], dense=False,
                                   rtol=scalar(o.rtol), atol=scalar(o.atol), on_step=None)

    def backward(self, run: _Run, g_us: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from types import SimpleNamespace

        from ._results import _inputs
        ts, _us, out, info, steps, step_u, step_f, step_k, families = run.result
        if out[lp.OUT_RETCODE] != lp.RC_SUCCESS:
            raise GradientNotSupported("the forward solve failed; no gradient of a failed "
                                       "solve")
        nsteps, nsaved = int(out[lp.OUT_NSTEPS]), int(out[lp.OUT_NSAVED])
        n, k = self.n, run.p.shape[0]
        stages = step_k[:nsteps]
        epoly, s_erk = _erk_dense(run.method)
        A, _b, _c, _e, _poly, xa, xc, flags = run.method.erk
        if xc.shape[0] > 0 and lp.FAMILY_ERK in run.method.families:
            # Vern7's interpolant needs stages the steps did not compute: all made here
            # (read as rows of `stages`, s_erk = 0 marks it)
            dense = all_dense_stages(run.model.functions[0], run.p, steps[:nsteps],
                                     step_u[:nsteps + 1], step_f[:nsteps + 1], stages,
                                     A.shape[0], flags, xa, xc)
            if dense.shape[1] < stages.shape[1]:
                pad = np.zeros((nsteps, stages.shape[1], self.n))
                pad[:, :dense.shape[1]] = dense
                dense = pad
            if families[:nsteps].min() == lp.FAMILY_ERK:
                stages, s_erk = np.ascontiguousarray(dense), 0
            else:
                epoly = np.zeros((0, 0))       # a switch: Hermite on its explicit steps
        P = pack_adjoint(run.p, steps[:nsteps], step_u[:nsteps + 1], step_f[:nsteps + 1],
                         stages, families, run.method.rosenbrock_dense,
                         self.options.tdir, epoly, s_erk)
        functions = run.model.adjoint_functions
        shape = SimpleNamespace(n_states=n + k)
        y = np.zeros(n + k)
        t_cur = float(info[lp.INFO_T])
        for j in range(nsaved - 1, -2, -1):
            target = float(ts[j]) if j >= 0 else self.options.t0
            if abs(target - t_cur) > lp.snap(target, t_cur):
                o = self._options(t_cur, target, n + k)
                inputs = tuple(typed(x) for x in _inputs(shape, run.method, o, False))
                res = lp.solve_one(*functions, P, y, *inputs)
                code = int(res[2][lp.OUT_RETCODE])
                if code != lp.RC_SUCCESS:
                    raise GradientNotSupported(
                        f"the adjoint solve of {self.sensealg!r} failed from t={t_cur:.9g} "
                        f"to t={target:.9g} (return code {code}); try tighter tolerances or "
                        f"backend='native'")
                y = res[1][int(res[2][lp.OUT_NSAVED]) - 1].copy()
                t_cur = target
            if j >= 0:
                y[:n] += g_us[j]
        return y[:n].copy(), y[n:].copy()


class _BatchRun:
    """A batch of initial states sharing p: each trajectory solved with its own steps and
    differentiated by its own adjoint, the parameter gradients summed. (The trajectories run
    one after another; the compiled kernels hold the GIL.)"""

    def __init__(self, runs: list[_Run]):
        self.runs = runs

    def forward(self, u0: np.ndarray, p: np.ndarray) -> np.ndarray:
        outs = [run.forward(row, p) for run, row in zip(self.runs, u0)]
        if len({o.shape[0] for o in outs}) != 1:
            raise GradientNotSupported("the trajectories of the batch saved different "
                                       "numbers of states (one failed)")
        return np.stack(outs, axis=1)

    def backward(self, g_us: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        gu0, gp = [], None
        for b, run in enumerate(self.runs):
            g0, g = run.backward(np.ascontiguousarray(g_us[:, b]))
            gu0.append(g0)
            gp = g if gp is None else gp + g
        return np.stack(gu0), gp


class NumbaSolve(torch.autograd.Function):
    """us = solve(u0, p) on the numba backend, p packed from `tensors` (as `param_tensors`
    lays them out); backward by the compiled adjoint, the gradient of p unpacked onto each
    tensor."""

    @staticmethod
    def forward(ctx, run: _Run, kinds: list, u0: Tensor, *tensors: Tensor) -> Tensor:
        ctx.run, ctx.kinds, ctx.tensors = run, kinds, tensors
        return torch.from_numpy(run.forward(u0.detach().numpy(), _pack(list(tensors), kinds)))

    @staticmethod
    def backward(ctx, g: Tensor):
        gu0, gp = ctx.run.backward(g.detach().to(torch.float64).contiguous().numpy())
        wanted = ctx.needs_input_grad[3:]
        grads = _unpack(gp, list(ctx.tensors), ctx.kinds, wanted)
        gu = torch.from_numpy(gu0) if ctx.needs_input_grad[2] else None
        return None, None, gu, *grads


def _is_continuous(sensealg) -> bool:
    from ...sensitivity import GaussAdjoint, InterpolatingAdjoint, QuadratureAdjoint
    return isinstance(sensealg, (InterpolatingAdjoint, QuadratureAdjoint, GaussAdjoint))


def gradient_refusal(sensealg, solver: AbstractSolver, problem: ODEProblem,
            options: SolveOptions | None = None) -> None:
    from ._methods import family_of, supported
    tensors = [problem.u0, *param_spec(problem).all]
    if any(x.device.type != "cpu" for x in tensors) or problem.u0.dtype != torch.float64:
        raise GradientNotSupported(
            f"the numba backend computes in float64 on the CPU; u0 is {problem.u0.dtype} on "
            f"{problem.u0.device}; solve in float64 on the CPU or use backend='native'")
    if not supported(solver):
        raise GradientNotSupported(f"the numba backend has no kernel for {solver!r}; use "
                                   f"backend='native'")
    if sensealg is not None and not (isinstance(sensealg, DirectAdjoint)
                                     or _is_continuous(sensealg)):
        raise GradientNotSupported(
            f"sensealg={sensealg!r} is not compiled on the numba backend, which has "
            f"DirectAdjoint() (the discrete adjoint of the accepted steps, explicit methods) "
            f"and InterpolatingAdjoint(), QuadratureAdjoint(), GaussAdjoint() (the adjoint "
            f"ODE solved backwards with the forward method); use one of them or "
            f"backend='native' for {sensealg!r}")
    if isinstance(sensealg, DirectAdjoint) and sensealg.checkpointing:
        raise GradientNotSupported(
            "DirectAdjoint(checkpointing=True) restarts the step-size sequence at every saved "
            "time on the torch backend; the numba backend keeps one sequence; use "
            "DirectAdjoint() or backend='native'")
    if not _is_continuous(sensealg) and family_of(solver) != lp.FAMILY_ERK:
        raise GradientNotSupported(
            f"the numba backend's DirectAdjoint() differentiates explicit Runge-Kutta solves "
            f"only; {solver!r} is not one; use sensealg=InterpolatingAdjoint() (or "
            f"QuadratureAdjoint()) for it, or backend='native' for its DirectAdjoint()")
    if problem.batch_shape:
        spec = param_spec(problem)
        batched = (spec.kind == "tensor" and spec.p_tensors[0].ndim > 1) or (
            spec.kind == "params" and any(x.ndim > 0 for x in spec.p_tensors))
        if batched:
            raise GradientNotSupported(
                "the numba backend differentiates a batch of initial states sharing their "
                "parameters; batched parameters need backend='native'")
        if options is not None and options.saveat is None:
            raise GradientNotSupported(
                "a batch on the numba backend solves every trajectory with its own steps, so "
                "they share no step times to save at; pass `saveat`")


def _prepared_run(problem, solver, options, sensealg):
    from ._results import _inputs
    from ._methods import pack_method
    gradient_refusal(sensealg, solver, problem, options)
    model = gradient_model(problem)
    method = pack_method(solver)
    inputs = tuple(typed(x) for x in _inputs(problem, method, options, True))
    return model, method, inputs


def solve_with_gradient(problem: ODEProblem, solver: AbstractSolver, options: SolveOptions,
                        sensealg: Any = None) -> Solution:
    """A numba solve whose saved states `sol.u` carry a gradient to u0, the tensors of p and
    a network's weights (as `solve`'s options; `sensealg` as on the torch backend)."""
    from ._results import _batch_solution, _single_solution
    model, method, inputs = _prepared_run(problem, solver, options, sensealg)
    continuous = _Continuous(problem, solver, options, sensealg) if _is_continuous(
        sensealg) else None
    tensors, kinds = param_tensors(problem, model)
    has_saveat = options.saveat is not None
    if not problem.batch_shape:
        run = _Run(model, method, inputs, has_saveat, continuous)
        u = NumbaSolve.apply(run, kinds, problem.u0.reshape(-1).to(torch.float64), *tensors)
        sol = _single_solution(problem, solver, method, options, run.result)
        sol.u = u
        return sol
    n = problem.n_states
    u0 = problem.u0.reshape(-1, n).to(torch.float64)
    batch = _BatchRun([_Run(model, method, inputs, has_saveat, continuous)
                       for _ in range(u0.shape[0])])
    u = NumbaSolve.apply(batch, kinds, u0, *tensors)
    results = [run.result for run in batch.runs]
    saved = u.shape[0]
    us = np.stack([r[1][:saved] for r in results])
    outs = np.stack([r[2] for r in results])
    infos = np.stack([r[3] for r in results])
    sol = _batch_solution(problem, solver, options, us, outs, infos)
    sol.u = u.reshape(saved, *problem.batch_shape, n)
    return sol


def prepare(problem: ODEProblem, solver: AbstractSolver, options: SolveOptions,
            sensealg: Any = None):
    """`solve(u0) -> saved states` for a training loop: the model, method and options are
    packed once; each call reads the values of the problem's parameter tensors and network
    weights (the same tensor objects, so an optimiser's in-place updates are seen) and
    returns a tensor with their gradient."""
    model, method, inputs = _prepared_run(problem, solver, options, sensealg)
    has_saveat = options.saveat is not None
    continuous = _Continuous(problem, solver, options, sensealg) if _is_continuous(
        sensealg) else None

    tensors, kinds = param_tensors(problem, model)

    def solve(u0: Tensor | None = None) -> Tensor:
        u0 = problem.u0 if u0 is None else u0
        run = _Run(model, method, inputs, has_saveat, continuous)
        return NumbaSolve.apply(run, kinds, u0.reshape(-1).to(torch.float64), *tensors)
    return solve
