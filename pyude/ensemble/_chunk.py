"""One chunk of trajectories, solved where it is sent.

Every strategy runs the same `run_chunk` on the same chunks, so the numbers depend on
`batch_size` only, never on where or in which order the chunks ran. Inside a chunk, the
trajectories that share a model (the same `f`, `jac` and time span, `u0` of one shape)
are stacked into one batched solve; those that cannot be stacked are solved one by one.
"""

from __future__ import annotations

import copyreg
import dataclasses
import os
import pickle
import socket
import time
from collections import OrderedDict
from hashlib import sha1
from typing import Any, Callable, Iterable

import torch
from torch import Tensor

from .._model import Params
from .._problem import ODEProblem
from .._solution import Solution

MAX_RERUNS = 100
"""How often `output_func` may ask for one trajectory to be solved again."""


@dataclasses.dataclass
class Work:
    """What a worker needs to solve any chunk: sent once per ensemble, pickled."""

    problem: ODEProblem
    prob_func: Callable | None
    output_func: Callable | None
    solver: Any
    options: dict


@dataclasses.dataclass
class ChunkResult:
    """The outputs and return codes of trajectories `start, start + 1, ...`."""

    start: int
    outputs: list
    retcodes: list
    reruns: int
    seconds: float
    cpu_seconds: float
    worker: str


class TrajectorySolution(Solution):
    """One trajectory cut out of a stacked solve: its saved times and states, return code
    and message; `stats` are those of the stacked solve it shared its steps with."""

    def __call__(self, t):
        raise ValueError(
            "this trajectory was solved stacked with others of its chunk, and a stacked "
            "solve keeps no dense output per trajectory; pass `saveat=` to the ensemble "
            "solve for the times you need, or `batch_size=1` to keep each trajectory's "
            "dense output")


def run_chunk(work: Work, start: int, stop: int, map_fn: Callable = map) -> ChunkResult:
    """Solve trajectories `start` to `stop - 1`, rerunning where `output_func` asks.
    `map_fn` solves the trajectories that cannot be stacked (a thread pool's `map`)."""
    began, cpu = time.perf_counter(), time.thread_time()
    n = stop - start
    outputs: list = [None] * n
    retcodes: list = [None] * n
    repeats = [0] * n
    todo = list(range(n))
    reruns = 0
    while todo:
        problems = [_problem(work, start + j, repeats[j]) for j in todo]
        sols = _solve_group(work, problems, [start + j for j in todo], map_fn)
        again = []
        for j, sol in zip(todo, sols):
            retcodes[j] = sol.retcode
            if work.output_func is None:
                outputs[j] = sol
                continue
            outputs[j], rerun = _output(work.output_func, sol, start + j)
            if rerun:
                repeats[j] += 1
                if repeats[j] > MAX_RERUNS:
                    raise RuntimeError(
                        f"output_func asked to rerun trajectory {start + j} {MAX_RERUNS} "
                        f"times; make prob_func change the problem with `repeat` (and "
                        f"output_func accept it eventually), or return rerun=False")
                again.append(j)
        reruns += len(again)
        todo = again
    return ChunkResult(start, outputs, retcodes, reruns, time.perf_counter() - began,
                       time.thread_time() - cpu, f"{socket.gethostname()}:{os.getpid()}")


def _problem(work: Work, i: int, repeat: int) -> ODEProblem:
    if work.prob_func is None:
        return work.problem
    problem = work.prob_func(work.problem, i, repeat)
    if not isinstance(problem, ODEProblem):
        raise TypeError(
            f"prob_func returned {type(problem).__name__} for trajectory {i}; it must return "
            f"a pyude.ODEProblem, usually `problem.remake(u0=..., p=...)`")
    return problem


def _output(output_func: Callable, sol: Solution, i: int) -> tuple[Any, bool]:
    out = output_func(sol, i)
    if not (isinstance(out, tuple) and len(out) == 2):
        raise TypeError(
            f"output_func must return a pair (value, rerun); for trajectory {i} it returned "
            f"{type(out).__name__}. Return `(sol, False)` to keep the solution as it is.")
    value, rerun = out
    if not isinstance(rerun, (bool, int)):
        raise TypeError(f"output_func's rerun flag must be True or False; for trajectory {i} "
                        f"it returned {rerun!r}")
    return value, bool(rerun)


def _solve_group(work: Work, problems: list[ODEProblem], indices: list[int],
                 map_fn: Callable) -> list[Solution]:
    """Stack and solve; a stacked solve that fails is split in halves until each failing
    trajectory is solved alone and has its own return code."""
    stacked = stack_problems(problems) if len(problems) > 1 else None
    if stacked is None:
        return list(map_fn(_Single(work), problems, indices))
    sol = _solve(work, stacked, f"trajectories {indices[0]} to {indices[-1]} (stacked)")
    if sol.success:
        return [_cut(sol, k) for k in range(len(problems))]
    half = len(problems) // 2
    return (_solve_group(work, problems[:half], indices[:half], map_fn)
            + _solve_group(work, problems[half:], indices[half:], map_fn))


class _Single:
    def __init__(self, work: Work):
        self.work = work

    def __call__(self, problem: ODEProblem, i: int) -> Solution:
        return _solve(self.work, problem, f"trajectory {i}")


def _solve(work: Work, problem: ODEProblem, what: str) -> Solution:
    from .. import solve
    try:
        return solve(problem, work.solver, throw=False, **work.options)
    except Exception as err:
        if hasattr(err, "add_note"):
            err.add_note(f"(raised while solving {what} of the ensemble)")
        raise


def _cut(sol: Solution, k: int) -> TrajectorySolution:
    return TrajectorySolution(
        t=sol.t, u=sol.u[:, k].clone(), retcode=sol.retcode, message=sol.message,
        stats=dataclasses.replace(sol.stats), solver=sol.solver, steps=None,
        tdir=1.0 if len(sol.t) < 2 or sol.t[-1] >= sol.t[0] else -1.0, methods=sol.methods)


def stack_problems(problems: list[ODEProblem]) -> ODEProblem | None:
    """One problem whose batch holds `problems` on a new leading axis, or None when they
    differ in more than `u0` and the values in `p`."""
    first = problems[0]
    for q in problems[1:]:
        if (q.f is not first.f or q.jac is not first.jac or q.tspan != first.tspan
                or q.u0.shape != first.u0.shape or q.u0.dtype != first.u0.dtype
                or q.u0.device != first.u0.device):
            return None
    p = _stack_params([q.p for q in problems], first.u0.ndim - 1)
    if p is _UNSTACKABLE:
        return None
    return ODEProblem(first.f, torch.stack([q.u0 for q in problems]), first.tspan, p,
                      jac=first.jac)


_UNSTACKABLE = object()


def _stack_params(ps: list, batch_ndim: int):
    first = ps[0]
    if all(p is first for p in ps):
        return first                     # shared: broadcasts against the stacked batch
    if any(p is None for p in ps):
        return _UNSTACKABLE
    if isinstance(first, Tensor):
        if not all(isinstance(p, Tensor) and p.shape == first.shape and p.dtype == first.dtype
                   for p in ps):
            return _UNSTACKABLE
        return _stack_values(ps, batch_ndim + 1)   # components on the last axis
    if isinstance(first, Params):
        names = first.names()
        if not all(isinstance(p, Params) and p.names() == names for p in ps):
            return _UNSTACKABLE
        out = {}
        for name in names:
            values = [p[name] for p in ps]
            if not all(v.shape == values[0].shape and v.dtype == values[0].dtype
                       for v in values):
                return _UNSTACKABLE
            out[name] = _stack_values(values, batch_ndim)
            if out[name] is _UNSTACKABLE:
                return _UNSTACKABLE
        return Params(out)
    return _UNSTACKABLE


def _stack_values(values: list[Tensor], ndim: int):
    """Stack values that broadcast against a batch of `ndim` axes: pad their shape with
    leading ones to `ndim` axes (what broadcasting does), then stack in front."""
    shape = tuple(values[0].shape)
    if len(shape) > ndim:
        return _UNSTACKABLE
    padded = (1,) * (ndim - len(shape)) + shape
    return torch.stack([v.reshape(padded) for v in values])


# --- sending work to other processes -----------------------------------------------------

def _reduce_params(p: Params):
    return Params, (dict(p.items()),)


# Params forbids attribute assignment, which the default pickling of its slots needs.
copyreg.pickle(Params, _reduce_params)


def dumps(obj: Any) -> bytes:
    """Pickle with cloudpickle where installed (it sends lambdas, closures and functions
    defined in `__main__` by value), else with the standard pickle."""
    try:
        import cloudpickle
    except ImportError:
        return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


_LOADED: OrderedDict = OrderedDict()


def remote_chunk(payload: bytes, start: int, stop: int, token: str) -> bytes:
    """What a worker runs: the work (unpickled once per process and ensemble), one chunk,
    the result pickled back. `token` keeps resubmissions distinct to schedulers that
    reuse the results of identical calls."""
    key = sha1(payload).digest()
    work = _LOADED.get(key)
    if work is None:
        work = pickle.loads(payload)
        _LOADED[key] = work
        while len(_LOADED) > 4:
            _LOADED.popitem(last=False)
    result = run_chunk(work, start, stop)
    try:
        return dumps(result)
    except Exception as err:
        raise TypeError(
            f"the outputs of trajectories {start} to {stop - 1} cannot be pickled to be sent "
            f"back from the worker ({type(err).__name__}: {err}); make output_func return "
            f"tensors, arrays, numbers or other picklable values") from err


def pickle_work(work: Work) -> bytes:
    """The pickled work, or a TypeError, before any work is sent, that names the piece
    that cannot be pickled and how to fix it."""
    p = work.problem.p
    values = list(p.items()) if isinstance(p, Params) else [("p", p)]
    for name, value in [("u0", work.problem.u0), *values]:
        if isinstance(value, Tensor) and value.requires_grad:
            raise ValueError(
                f"the problem's {name} requires grad, but gradients do not come back from "
                f"other processes; solve an ensemble you differentiate with "
                f"EnsembleSerial() or EnsembleThreads() (the loss then backpropagates "
                f"through the stacked solves), or pass `{name}.detach()`")
    try:
        return dumps(work)
    except Exception as err:
        found = [("problem.f", work.problem.f), ("problem.jac", work.problem.jac),
                 ("problem.p", work.problem.p), ("problem.u0", work.problem.u0),
                 ("prob_func", work.prob_func), ("output_func", work.output_func),
                 ("solver", work.solver)]
        found += [(f"the solve option `{k}`", v) for k, v in work.options.items()]
        path, leaf, leaf_err = _culprit(found, err)
        lambdas = ("" if _has_cloudpickle() else
                   " Without cloudpickle installed, lambdas, closures and functions defined "
                   "inside other functions cannot be pickled: define them at module level, "
                   "or `pip install cloudpickle`.")
        raise TypeError(
            f"the ensemble cannot be sent to the workers: {path} ({_short(leaf)}) cannot be "
            f"pickled: {type(leaf_err).__name__}: {leaf_err}. A distributed strategy pickles "
            f"the problem (f, jac, u0, p), prob_func, output_func, the solver and the solve "
            f"options once, before any work starts. To fix it, keep objects like this one "
            f"(locks, open files, connections, generators) out of them: create them inside "
            f"the function, on the worker, and use a module-level function instead of a "
            f"lambda or a closure over them.{lambdas} EnsembleSerial() and EnsembleThreads() "
            f"pickle nothing and run this ensemble as it is.") from err


def _has_cloudpickle() -> bool:
    try:
        import cloudpickle  # noqa: F401
    except ImportError:
        return False
    return True


def _short(obj: Any) -> str:
    text = repr(obj)
    return text if len(text) <= 80 else text[:77] + "..."


def _culprit(named: Iterable[tuple[str, Any]], err: Exception, depth: int = 0):
    """The deepest named piece that fails to pickle, its value and its error."""
    for name, obj in named:
        try:
            dumps(obj)
        except Exception as inner:
            if depth >= 6:
                return name, obj, inner
            deeper = _culprit(_parts(name, obj), inner, depth + 1)
            return deeper if deeper[0] is not None else (name, obj, inner)
    return None, None, err


def _parts(name: str, obj: Any) -> list[tuple[str, Any]]:
    """The pieces `obj` is pickled from, with their names."""
    if isinstance(obj, (str, bytes, int, float, Tensor)):
        return []
    if isinstance(obj, dict):
        return [(f"{name}[{k!r}]", v) for k, v in obj.items()]
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [(f"{name}[{i}]", v) for i, v in enumerate(obj)]
    if isinstance(obj, Params):
        return [(f"{name}.{k}", v) for k, v in obj.items()]
    parts = []
    code = getattr(obj, "__code__", None)
    if code is not None:                                  # a function
        for var, cell in zip(code.co_freevars, getattr(obj, "__closure__", None) or ()):
            try:
                parts.append((f"{name} (closure variable `{var}`)", cell.cell_contents))
            except ValueError:
                pass
        glob = getattr(obj, "__globals__", {})
        parts += [(f"{name} (global `{g}`)", glob[g]) for g in code.co_names if g in glob]
        parts += [(f"{name} (default {i})", d) for i, d in enumerate(obj.__defaults__ or ())]
        return parts
    for attr in ("__self__", "func", "args", "keywords"):    # bound methods, partials
        if hasattr(obj, attr) and not isinstance(getattr(type(obj), attr, None), property):
            parts.append((f"{name}.{attr}", getattr(obj, attr)))
    state = getattr(obj, "__dict__", None)
    if isinstance(state, dict):
        for k, v in state.items():
            if isinstance(v, dict) and k.startswith("_"):     # nn.Module's _modules, ...
                parts += [(f"{name}.{kk}", vv) for kk, vv in v.items()]
            else:
                parts.append((f"{name}.{k}", v))
    for slot in getattr(type(obj), "__slots__", ()):
        if hasattr(obj, slot):
            parts.append((f"{name}.{slot}", getattr(obj, slot)))
    return parts
