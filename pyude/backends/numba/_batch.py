"""A batch as independent solves in parallel (`prange`), each trajectory with its own steps
and its own return code, so that one failing trajectory leaves the others whole. They share
the `saveat` times; states after a trajectory's failure are NaN.

The single-solve kernel arrives as a function value (`SOLVE_FN`) rather than as a called
global: numba would otherwise link its code into this kernel and optimise it again (about
17 s of CPU on the first batch on a machine, against a few seconds for the loop alone).
"""

from __future__ import annotations

import threading
from functools import lru_cache

import numpy as np
from numba import prange, types

from ._lazy import on_first_call
from ._loop import INFO_SIZE, OUT_NSAVED, OUT_SIZE, SOLVE_SIG, solve_one
from ._model import FunctionAddress
from ._types import CUBE, MAT

SOLVE_FN = types.FunctionType(SOLVE_SIG)
BATCH_SIG = types.Tuple((CUBE, types.int64[:, ::1], MAT))(
    SOLVE_FN, *SOLVE_SIG.args[:3], MAT, MAT, *SOLVE_SIG.args[5:])


# One parallel launch at a time: the workqueue threading layer (see the package's
# __init__) aborts when two threads launch parallel kernels at once; each launch uses every
# core anyway.
_LAUNCH = threading.Lock()


def run_batch(*args):
    """`solve_batch(single_solve(), *args)`, one launch at a time."""
    with _LAUNCH:
        return solve_batch(single_solve(), *args)


@lru_cache(maxsize=None)
def single_solve() -> FunctionAddress:
    """`solve_one` as the batch kernel takes it."""
    return FunctionAddress(solve_one, SOLVE_SIG)


@on_first_call(BATCH_SIG, parallel=True)
def solve_batch(solve, rhs, jac, dfdt, p, u0, cfg, ctrl, switch, rtol, atol, stops, saveat,
                eA, eb, ec, ee, epoly, exa, exc, eflags, rtab, rpoly, etab, erk_step,
                rosenbrock_step, esdirk_step):
    """Rows of p and u0 are trajectories, each solved by `solve` (`single_solve()`).
    Returns the saved states (B, len(saveat), n), each trajectory's integer outputs
    (`_loop.OUT_*`) and where it stopped (`_loop.INFO_*`)."""
    count, n = u0.shape
    us = np.full((count, saveat.shape[0], n), np.nan)
    outs = np.zeros((count, OUT_SIZE), dtype=np.int64)
    infos = np.zeros((count, INFO_SIZE))
    for b in prange(count):
        result = solve(rhs, jac, dfdt, p[b], u0[b], cfg, ctrl, switch, rtol, atol, stops,
                       saveat, eA, eb, ec, ee, epoly, exa, exc, eflags, rtab, rpoly, etab,
                       erk_step, rosenbrock_step, esdirk_step)
        saved = result[2][OUT_NSAVED]
        us[b, :saved] = result[1][:saved]
        outs[b] = result[2]
        infos[b] = result[3]
    return us, outs, infos
