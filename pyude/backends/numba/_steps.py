"""The family step functions as function values for the loop kernel, each compiled on the
first solve that uses its family (with an explicit signature, cached by numba).

The loop calls its step through these values instead of calling the step functions as
globals: numba would otherwise link every family's code into the loop and optimise it
again, so the first solve on a machine compiled every family; and numba's cache of a
kernel is not invalidated when a function it called from another file changes, which an
address handed over at run time cannot go stale on. An indirect call per step costs
nothing next to a step.
"""

from __future__ import annotations

from functools import lru_cache

from numba import njit, types

from ._erk import erk_step
from ._esdirk import ESDIRK_STEP_SIG, esdirk_step
from ._model import FunctionAddress
from ._rosenbrock import ROSENBROCK_STEP_SIG, rosenbrock_step
from ._types import IVEC, MAT, RHS_FN, VEC

_F8 = types.float64
# erk_step(rhs, p, t, u, f0, dt, A, b, c, b_err, flags, K, u1, err, work) -> calls of f
ERK_STEP_SIG = types.int64(RHS_FN, VEC, _F8, VEC, VEC, _F8, MAT, VEC, VEC, VEC, IVEC, MAT,
                           VEC, VEC, VEC)
ERK_STEP_FN = types.FunctionType(ERK_STEP_SIG)
ROSENBROCK_STEP_FN = types.FunctionType(ROSENBROCK_STEP_SIG)
ESDIRK_STEP_FN = types.FunctionType(ESDIRK_STEP_SIG)

_STEPS = {0: (erk_step, ERK_STEP_SIG), 1: (rosenbrock_step, ROSENBROCK_STEP_SIG),
          2: (esdirk_step, ESDIRK_STEP_SIG)}


@lru_cache(maxsize=None)
def step_function(family: int) -> FunctionAddress:
    """The family's step (`_loop.FAMILY_*`), compiled for its signature on first use."""
    fn, sig = _STEPS[family]
    return FunctionAddress(njit(sig, cache=True)(fn.py_func), sig)


def _no_erk_step(rhs, p, t, u, f0, dt, A, b, c, b_err, flags, K, u1, err, work):
    return -1


def _no_rosenbrock_step(f, jac, dfdt, tab, t, u, f0, dt, p, J, dT, jkey, W, Winv, piv, work,
                        stages, u1, err, f1, counters):
    return -1


def _no_esdirk_step(f, jac, tab, t, u, f0, dt, p, rtol, atol, J, W, Winv, piv, state, work,
                    stages, u1, err, f1, counters):
    return -1


_STAND_INS = {0: _no_erk_step, 1: _no_rosenbrock_step, 2: _no_esdirk_step}


@lru_cache(maxsize=None)
def no_step(family: int) -> FunctionAddress:
    """A stand-in of the family's type for a solve that never takes such a step."""
    sig = _STEPS[family][1]
    return FunctionAddress(njit(sig, cache=True)(_STAND_INS[family]), sig)


def steps_for(families: set[int]) -> tuple:
    """(erk, rosenbrock, esdirk) step values: the real ones for `families`."""
    return tuple(step_function(f) if f in families else no_step(f) for f in (0, 1, 2))
