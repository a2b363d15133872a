"""`DirectAdjoint(checkpointing=True)` on the numba backend, with the torch backend's meaning
(`pyude.sensitivity._checkpoint.solve_checkpointed`).

The forward pass solves interval by interval between the saved times: each interval is its
own solve from one saved time to the next (`saveat=[t_to]`, the tstops inside it, its own
step-size sequence from Hairer's initial step), run without dense output, and only each
interval's starting state is kept. The backward pass goes through the intervals from the
last: it solves the interval again from its kept state with every step's stages stored (the
same steps, bit for bit: dense output only stores), and runs the discrete adjoint of those
steps (`_adjoint.erk_adjoint`) with the cotangent of the interval's end state, the loss's at
that saved time plus what the later intervals sent back. The interval's dL/du_start goes on
to the interval before it; dL/dp is summed over the intervals. At most one interval's steps
are stored at a time, so memory follows the longest interval, not the whole solve, for about
twice the compute. Explicit Runge-Kutta methods only, as `DirectAdjoint()` here.

If `saveat[0] == t0` the first saved state is u0 itself (its cotangent goes to u0's
gradient). A failed interval ends the solve with the states saved before it, as on the torch
backend; such a partial solution has no gradient.
"""

from __future__ import annotations

import dataclasses
from itertools import pairwise

import numpy as np

from ..._options import SolveOptions
from ..._problem import ODEProblem
from ..._solution import Solution
from ...sensitivity._adjoint import failed_forward
from ...sensitivity._checkpoint import NEEDS_SAVEAT
from ...solvers._base import AbstractSolver
from . import _loop as lp
from ._adjoint import erk_adjoint
from ._results import _RETCODES, _inputs, _message, _stats, make_solution
from ._typed import typed


class Intervals:
    """The intervals between the saved times of one solve, each one's kernel inputs packed
    once (without and with stored steps), shared by every run of the solve."""

    def __init__(self, problem: ODEProblem, method, options: SolveOptions):
        o = options
        if o.saveat is None or len(o.saveat) < 2:
            raise ValueError(NEEDS_SAVEAT)
        times = [o.t0, *[s for s in o.saveat if s != o.t0]]
        self.options = o
        self.n = problem.n_states
        # saveat[0] == t0: the first saved state is u0 itself
        self.saves_u0 = o.saveat[0] == o.t0
        self.subs = [dataclasses.replace(o, t0=a, t1=b, saveat=[b], dense=False,
                                         tstops=[s for s in o.tstops if a < s < b])
                     for a, b in pairwise(times)]
        self.plain = [self._pack(problem, method, sub, False) for sub in self.subs]
        self.dense = [self._pack(problem, method, sub, True) for sub in self.subs]

    @staticmethod
    def _pack(problem, method, sub: SolveOptions, dense: bool) -> tuple:
        return tuple(typed(x) for x in _inputs(problem, method, sub, dense))


class CheckpointRun:
    """One checkpointed solve, `forward(u0, p)` then `backward(g_us)` (as `_gradient._Run`,
    for `NumbaSolve`). After the backward pass, `most_steps_held` is the most steps (with
    their stages) held at once, against `total_steps`, the accepted steps of the solve."""

    def __init__(self, model, method, intervals: Intervals):
        self.model, self.method, self.intervals = model, method, intervals
        self.p = None
        self.starts: list[np.ndarray] = []   # each solved interval's starting state
        self.outs: list[np.ndarray] = []     # each solved interval's counters (`OUT_*`)
        self.infos: list[np.ndarray] = []    # and where it stopped (`INFO_*`)
        self.saved = np.zeros((0, intervals.n))
        self.total_steps = 0
        self.most_steps_held = 0

    def forward(self, u0: np.ndarray, p: np.ndarray) -> np.ndarray:
        iv = self.intervals
        self.p = np.ascontiguousarray(p, dtype=np.float64)
        u = np.array(u0, dtype=np.float64)                  # (a copy)
        saved = [u] if iv.saves_u0 else []
        self.starts, self.outs, self.infos = [], [], []
        for inputs in iv.plain:
            result = lp.solve_one(*self.model.functions, self.p, u, *inputs)
            out = result[2]
            self.starts.append(u)
            self.outs.append(out)
            self.infos.append(result[3])
            if out[lp.OUT_RETCODE] != lp.RC_SUCCESS:
                break
            u = result[1][int(out[lp.OUT_NSAVED]) - 1].copy()
            saved.append(u)
        self.total_steps = int(sum(out[lp.OUT_NACCEPT] for out in self.outs))
        self.saved = np.array(saved).reshape(len(saved), iv.n)
        return self.saved.copy()

    @property
    def success(self) -> bool:
        return bool(self.outs) and self.outs[-1][lp.OUT_RETCODE] == lp.RC_SUCCESS

    @property
    def result(self) -> tuple:
        """(saved times, saved states, counters, where it stopped), shaped as the loop
        kernel's first four outputs: the counters summed over the intervals, the return
        code and the stop the last solved interval's."""
        out = np.sum(self.outs, axis=0).astype(np.int64)
        out[lp.OUT_RETCODE] = self.outs[-1][lp.OUT_RETCODE]
        out[lp.OUT_NSAVED] = self.saved.shape[0]
        out[lp.OUT_NSTEPS] = 0
        ts = np.asarray(self.intervals.options.saveat[:self.saved.shape[0]],
                        dtype=np.float64)
        return ts, self.saved, out, self.infos[-1]

    def solution(self, solver: AbstractSolver) -> Solution:
        """The forward pass as a `Solution` (the states without their gradient; no dense
        output, as on the torch backend)."""
        o = self.intervals.options
        ts, us, out, info = self.result
        code = int(out[lp.OUT_RETCODE])
        return make_solution(ts, us, _RETCODES[code], _message(code, info, o), _stats(out),
                             solver, None, o.tdir, None, None)

    def backward(self, g_us: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not self.success:
            _ts, _us, out, info = self.result
            code = int(out[lp.OUT_RETCODE])
            raise RuntimeError(failed_forward(_message(code, info, self.intervals.options)))
        iv = self.intervals
        g_us = np.ascontiguousarray(g_us, dtype=np.float64)
        first = 1 if iv.saves_u0 else 0
        A, b, c, _b_err, poly, exa, exc, flags = self.method.erk
        g_start = np.zeros(iv.n)
        gp = np.zeros(self.p.shape[0])
        self.most_steps_held = 0
        for k in range(len(iv.dense) - 1, -1, -1):
            inputs = iv.dense[k]
            _ts, _us, out, info, steps, step_u, _step_f, step_k, _families = lp.solve_one(
                *self.model.functions, self.p, self.starts[k], *inputs)
            nsteps = int(out[lp.OUT_NSTEPS])
            self.most_steps_held = max(self.most_steps_held, nsteps)
            tb = np.empty(nsteps + 1)
            tb[:nsteps] = steps[:nsteps, 0]
            tb[nsteps] = info[lp.INFO_T]
            g_end = (g_us[first + k] + g_start).reshape(1, iv.n)
            g_start, g_p = erk_adjoint(self.model.functions[0], self.model.vjp, self.p,
                                       steps[:nsteps], tb, step_u[:nsteps + 1],
                                       step_k[:nsteps], inputs[6], 1, g_end,
                                       A, b, c, poly, exa, exc, flags)
            gp += g_p
            del steps, step_u, _step_f, step_k     # this interval's steps, before the next's
        if first:
            g_start = g_start + g_us[0]
        return g_start, gp
