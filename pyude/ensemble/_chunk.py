"""One chunk of trajectories, solved where it is sent.

Every strategy runs the same `run_chunk` on the same chunks, so the numbers depend on
`batch_size` only, never on where or in which order the chunks ran. Inside a chunk, the
trajectories that share a model (the same `f`, `jac` and time span, `u0` of one shape)
are stacked into one batched solve; those that cannot be stacked are solved one by one.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import time
from typing import Any, Callable

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
    from .._solve import solve
    try:
        return solve(problem, work.solver, throw=False, **work.options)
    except Exception as err:
        if hasattr(err, "add_note"):
            err.add_note(f"(raised while solving {what} of the ensemble)")
        raise


def _cut(sol: Solution, k: int) -> TrajectorySolution:
    return TrajectorySolution(
        t=sol.t, u=sol.u[:, k].clone(), retcode=sol.retcode, message=sol.message,
        stats=dataclasses.replace(sol.stats), solver=sol.solver, methods=sol.methods)


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
