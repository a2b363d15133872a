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
  methods. Memory is the forward dense output (every step's stages).
- `DirectAdjoint(checkpointing=True)`: the same discrete adjoint, solved and differentiated
  interval by interval between the saved times, each interval with its own step-size
  sequence as on the torch backend (`_checkpoint`); memory follows the longest interval.
- `InterpolatingAdjoint()`, `QuadratureAdjoint()`, `GaussAdjoint()`: the adjoint ODE solved
  backwards by the loop kernel with the forward method, stiff methods and switches included
  (`_adjoint_continuous`). All three integrate dL/dp inside the adjoint system; they differ
  on the torch backend only in how that integral is taken, so they agree here to the
  tolerance.
- Anything else (`BacksolveAdjoint()`, DirectAdjoint on a stiff method) is refused with a
  message naming what to use instead, `backend='native'` among it. A batch of initial
  states sharing p is differentiated trajectory by trajectory (each with its own steps),
  the parameter gradients summed; batched parameters are refused. The kernels release the
  GIL, and trajectories long enough to be worth it are shared among threads, one per core
  (`_across_cores`). A parallel kernel (the forward's `_batch` with an adjoint per row)
  was measured and dropped: it must solve every trajectory again for its stages, and on
  2 cores it was slower than one by one.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..._options import SolveOptions
from ..._problem import ODEProblem
from ..._solution import Solution
from ...sensitivity import DirectAdjoint
from ...sensitivity._adjoint import param_spec, refuse_gradient
from ...solvers._base import AbstractSolver
from . import _loop as lp
from ._adjoint import erk_adjoint
from ._adjoint_continuous import all_dense_stages, pack_adjoint
from ._checkpoint import CheckpointRun, Intervals


from ._grad_model import (GradientModel, gradient_model, param_tensors,
                          _pack, _unpack)
from ._typed import typed


class GradientNotSupported(ValueError):
    """This gradient cannot be computed on the numba backend; the message says why and
    names the torch backend."""


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
    differentiated by its own adjoint, the parameter gradients summed. The trajectories are
    shared among threads, one per core (the kernels release the GIL)."""

    def __init__(self, runs: list[_Run]):
        self.runs = runs

    def forward(self, u0: np.ndarray, p: np.ndarray) -> np.ndarray:
        outs = _across_cores([lambda run=run, row=row: run.forward(row, p)
                              for run, row in zip(self.runs, u0)])
        if len({o.shape[0] for o in outs}) != 1:
            raise GradientNotSupported("the trajectories of the batch saved different "
                                       "numbers of states (one failed)")
        return np.stack(outs, axis=1)

    def backward(self, g_us: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        grads = _across_cores([
            lambda run=run, b=b: run.backward(np.ascontiguousarray(g_us[:, b]))
            for b, run in enumerate(self.runs)])
        return np.stack([g0 for g0, _ in grads]), np.sum([g for _, g in grads], axis=0)


_POOL: dict = {}              # the process id -> its thread pool (a forked child makes its own)
_POOL_LOCK = threading.Lock()
# A trajectory whose forward pass took less than this many seconds is not worth a thread:
# on 2 cores the spiral's 20 windows of 4 steps (about 70 us each) take 4.1 ms an
# iteration one by one and 4.7 ms shared between two threads, while 8 Lotka-Volterra UDE
# trajectories over [0, 10] (about 1.4 ms each) take 11.3 ms one by one and 9.9 ms shared.
_THREAD_AFTER_S = 2e-4


def _across_cores(tasks: list) -> list:
    """Each task's result, in order: the first run here and timed; the others, when it took
    long enough to be worth a thread, split into one contiguous share per core."""
    import time

    import numba
    start = time.perf_counter()
    first = tasks[0]()
    workers = min(numba.get_num_threads(), len(tasks) - 1)
    if workers <= 1 or time.perf_counter() - start < _THREAD_AFTER_S:
        return [first, *(task() for task in tasks[1:])]
    shares = np.array_split(np.arange(1, len(tasks)), workers)
    parts = _thread_pool().map(lambda share: [tasks[i]() for i in share], shares)
    return [first, *(result for part in parts for result in part)]


def _thread_pool():
    """This process's pool of batch threads (a pool inherited through fork has no threads:
    a child would wait on it forever)."""
    import os
    with _POOL_LOCK:
        pool = _POOL.get(os.getpid())
        if pool is None:
            import numba
            from concurrent.futures import ThreadPoolExecutor
            _POOL.clear()
            pool = _POOL[os.getpid()] = ThreadPoolExecutor(
                numba.config.NUMBA_NUM_THREADS, thread_name_prefix="pyude-batch")
        return pool


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
            f"DirectAdjoint() and DirectAdjoint(checkpointing=True) (the discrete adjoint of "
            f"the accepted steps, explicit methods) and InterpolatingAdjoint(), "
            f"QuadratureAdjoint(), GaussAdjoint() (the adjoint ODE solved backwards with the "
            f"forward method); use one of them or backend='native' for {sensealg!r}")
    if not _is_continuous(sensealg) and family_of(solver) != lp.FAMILY_ERK:
        name = repr(DirectAdjoint() if sensealg is None else sensealg)
        raise GradientNotSupported(
            f"the numba backend's {name} differentiates explicit Runge-Kutta solves "
            f"only; {solver!r} is not one; use sensealg=InterpolatingAdjoint() (or "
            f"QuadratureAdjoint()) for it, or backend='native' for its {name}")
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
    """The model, method and a maker of runs (one per forward pass)."""
    from ._results import _inputs
    from ._methods import pack_method
    gradient_refusal(sensealg, solver, problem, options)
    model = gradient_model(problem)
    method = pack_method(solver)
    if _checkpointed(sensealg):
        intervals = Intervals(problem, method, options)
        return model, method, lambda: CheckpointRun(model, method, intervals)
    inputs = tuple(typed(x) for x in _inputs(problem, method, options, True))
    has_saveat = options.saveat is not None
    continuous = _Continuous(problem, solver, options, sensealg) if _is_continuous(
        sensealg) else None
    return model, method, lambda: _Run(model, method, inputs, has_saveat, continuous)


def _checkpointed(sensealg) -> bool:
    return isinstance(sensealg, DirectAdjoint) and sensealg.checkpointing


def solve_with_gradient(problem: ODEProblem, solver: AbstractSolver, options: SolveOptions,
                        sensealg: Any = None) -> Solution:
    """A numba solve whose saved states `sol.u` carry a gradient to u0, the tensors of p and
    a network's weights (as `solve`'s options; `sensealg` as on the torch backend)."""
    from ._results import _batch_solution, _single_solution
    model, method, new_run = _prepared_run(problem, solver, options, sensealg)
    tensors, kinds = param_tensors(problem, model)
    if not problem.batch_shape:
        run = new_run()
        u = NumbaSolve.apply(run, kinds, problem.u0.reshape(-1).to(torch.float64), *tensors)
        sol = run.solution(solver) if _checkpointed(sensealg) else _single_solution(
            problem, solver, method, options, run.result)
        sol.u = u
        return refuse_gradient(sol)
    n = problem.n_states
    u0 = problem.u0.reshape(-1, n).to(torch.float64)
    batch = _BatchRun([new_run() for _ in range(u0.shape[0])])
    u = NumbaSolve.apply(batch, kinds, u0, *tensors)
    results = [run.result for run in batch.runs]
    us = np.stack([r[1][:u.shape[0]] for r in results])
    outs = np.stack([r[2] for r in results])
    infos = np.stack([r[3] for r in results])
    saved = u.shape[0]
    sol = _batch_solution(problem, solver, options, us, outs, infos)
    sol.u = u.reshape(saved, *problem.batch_shape, n)
    return refuse_gradient(sol)


def prepare(problem: ODEProblem, solver: AbstractSolver, options: SolveOptions,
            sensealg: Any = None, *, throw: bool = False):
    """`solve(u0) -> saved states` for a training loop: the model, method and options are
    packed once; each call reads the values of the problem's parameter tensors and network
    weights (the same tensor objects, so an optimiser's in-place updates are seen) and
    returns a tensor with their gradient. With `throw` (not for the checkpointed adjoint),
    a failed solve raises `SolverError` as `pyude.solve` does."""
    model, method, new_run = _prepared_run(problem, solver, options, sensealg)
    tensors, kinds = param_tensors(problem, model)

    def solve(u0: Tensor | None = None) -> Tensor:
        u0 = problem.u0 if u0 is None else u0
        run = new_run()
        u = NumbaSolve.apply(run, kinds, u0.reshape(-1).to(torch.float64), *tensors)
        if throw and run.result[2][lp.OUT_RETCODE] != lp.RC_SUCCESS:
            from ..._errors import SolverError
            from ._results import _single_solution
            sol = _single_solution(problem, solver, method, options, run.result)
            sol.u = u
            sol = refuse_gradient(sol)
            raise SolverError(f"solve with {solver!r} failed: {sol.retcode}: {sol.message}",
                              sol)
        return u
    return solve


def repeatable(sensealg) -> bool:
    """Whether `prepare(..., throw=True)` takes this sensitivity (one run per solve)."""
    return not _checkpointed(sensealg)
