"""The ESDIRK step as a numba kernel: `pyude.solvers._sdirk.AbstractESDIRK.step` (its host
path) and the simplified Newton iteration of `pyude.solvers._newton.solve_stage`.

Stage i: z_i = dt f(t + c_i dt, u + sum_{j<i} a_ij z_j + gamma z_i), solved by simplified
Newton with W = I - gamma dt J; u1 = u + sum b_i z_i (row s of a when stiffly accurate);
err = W^-1 sum b_err_i z_i, the estimate filtered through W. The stages z_i are the torch
stepper's `StepResult.stages`.

What persists across steps is the torch stepper's cache, in arrays the loop owns: J, the
factorised W and W^-1, and `state` (float64, STATE_SIZE):
    state[FRESH_T]  t where J was taken (nan: no J yet). J taken at the step's own start is
                    "fresh" (the torch cache compares (t, id(u)); within one solve t never
                    returns to an earlier value, so t alone says the same).
    state[LU_DT]    the dt W was factorised for (nan: none; a new J clears it).
    state[ETA]      Newton's eta carried from stage to stage and step to step (starts at 1).
    state[SLOW]     1 when the last attempt had a stage needing more than SLOW_ITERATIONS
                    Newton iterations: the next step from a new point refreshes J first.
The policy, as the torch stepper's: J is refreshed when there is none, when the last step
converged slowly, or when Newton fails (or W is singular) with a J from an earlier point,
and the step is then tried once more; a failure with a fresh J is returned and the loop
halves dt. With a J from an earlier point no stage accepts its first Newton iterate. A
Newton correction below the state's round-off (eps |u| in Newton's scaled norm), once the
first iterate may be accepted, is convergence, and no rate is read from it.

Python side:

    esdirk_arrays(solver: AbstractESDIRK) -> tab
        tab = (a, b, c, b_err, gamma, stiffly_accurate), of numba type ESDIRK_TAB: a: f8[:, ::1]
        (s, s); b, c, b_err: f8[::1] (s,); gamma: float; stiffly_accurate: int (1: u1 is
        row s of a and f1 = z_s / dt).

Kernels (`@njit(cache=True)`):

    esdirk_workspace(n: int, s: int) -> (J, W, Winv, piv, state, work, stages)
        J, W, Winv (n, n); piv int64 (n,); state (STATE_SIZE,) = [nan, nan, 1, 0];
        work (4, n); stages (s, n). One set per trajectory and solve.

    esdirk_step(f: RHS_FN, jac: JAC_FN, tab: ESDIRK_TAB, t: f8, u: f8[::1], f0: f8[::1],
                dt: f8, p: f8[::1], rtol: f8[::1], atol: f8[::1],
                J, W, Winv, piv, state, work, stages,
                u1: f8[::1], err: f8[::1], f1: f8[::1], counters: i8[::1]) -> int64
        f0 = f(t, u); rtol, atol per component (n,). Writes u1, err, stages (z_1 .. z_s as
        rows) and f1 = f(t + dt, u1) when stiffly accurate (else f1 untouched); counters
        [nf, njacs, nw, nsolve] += this step's work. Returns OK (0), or SINGULAR_W (1) or
        NEWTON_FAILED (2) for a step not completed (u1, err, stages then meaningless).
        Its numba type is ESDIRK_STEP_SIG (f, jac as RHS_FN, JAC_FN of `_types`). u1, err,
        f1 must not alias u or f0 (u1 holds the stage sums during the step).

The torch classes keep the base `order_now` and `on_accept` (order, 1.0): no hook to honour.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, types

from ._linalg import (
    NEWTON_FAILED,
    NF,
    NJACS,
    NSOLVE,
    NW,
    OK,
    SINGULAR_W,
    SMALL_N,
    apply_inverse,
    factorise,
)
from ._types import IVEC, JAC_FN, MAT, RHS_FN, VEC

_F8 = types.float64
ESDIRK_TAB = types.Tuple((MAT, VEC, VEC, VEC, _F8, types.int64))
# `esdirk_step`'s type with the model as function values, for a kernel compiled with
# explicit signatures.
ESDIRK_STEP_SIG = types.int64(RHS_FN, JAC_FN, ESDIRK_TAB, _F8, VEC, VEC, _F8, VEC, VEC, VEC,
                              MAT, MAT, MAT, IVEC, VEC, MAT, MAT, VEC, VEC, VEC, IVEC)

FRESH_T, LU_DT, ETA, SLOW = 0, 1, 2, 3
STATE_SIZE = 4
# The constants of `pyude.solvers._newton` and `_sdirk` (the same numbers, by a test).
KAPPA = 0.01
MAX_ITERS = 10
SLOW_ITERATIONS = 3
EPS = 2.220446049250313e-16


def esdirk_arrays(solver) -> tuple:
    """The solver's tableau as the kernel reads it (see the module docstring)."""
    tab = solver.tableau
    arr = np.ascontiguousarray
    return (arr(tab.a, dtype=np.float64), arr(tab.b, dtype=np.float64),
            arr(tab.c, dtype=np.float64), arr(tab.b_err, dtype=np.float64),
            float(tab.gamma), int(tab.stiffly_accurate))


@njit(cache=True)
def esdirk_workspace(n, s):
    state = np.zeros(STATE_SIZE)
    state[FRESH_T], state[LU_DT], state[ETA] = np.nan, np.nan, 1.0
    return (np.zeros((n, n)), np.zeros((n, n)), np.zeros((n, n)),
            np.zeros(n, dtype=np.int64), state, np.zeros((4, n)), np.zeros((s, n)))


@njit(cache=True)
def _refresh_jacobian(jac, t, u, p, J, state, counters):
    jac(t, u, p, J)
    state[FRESH_T], state[LU_DT] = t, np.nan
    counters[NJACS] += 1


@njit(cache=True)
def _factor(J, gamma, dt, W, Winv, piv, state, counters):
    """W = I - gamma dt J factorised, kept while dt and J stay."""
    if state[LU_DT] == dt:
        return True
    n, h = J.shape[0], dt * gamma
    for i in range(n):
        for j in range(n):
            W[i, j] = -(h * J[i, j])
        W[i, i] = 1.0 - h * J[i, i]
    counters[NW] += 1
    if not factorise(W, piv, Winv):
        state[LU_DT] = np.nan
        return False
    state[LU_DT] = dt
    return True


# Inlined into `_attempt`: a call per stage with fourteen arguments cost a quarter of the
# step on ROBER (KenCarp4, 2.1 -> 1.6 us).
@njit(cache=True, inline="always")
def _newton(f, ti, tmp, p, dt, gamma, i, stages, scale, floor, W, Winv, piv, state,
            min_iterations, work, counters):
    """`solve_stage` on z = dt f(ti, tmp + gamma z) for z = stages[i], which holds the guess
    and then the iterate, with its round-off `floor`. Returns the iterations taken, or -1
    when Newton failed (eta then kept). The iteration's sums, product and norm are written
    out (see `_attempt`)."""
    x, r, dz = work[1], work[2], work[3]
    n, small = tmp.shape[0], tmp.shape[0] <= SMALL_N
    eta = max(state[ETA], EPS) ** 0.8
    previous = -1.0
    for k in range(1, MAX_ITERS + 1):
        for m in range(n):
            x[m] = tmp[m] + gamma * stages[i, m]
        f(ti, x, p, r)
        counters[NF] += 1
        for m in range(n):
            r[m] = dt * r[m] - stages[i, m]
        if small:                                  # W^-1 r, as `apply_inverse` forms it
            for m in range(n):
                acc = 0.0
                for j in range(n):
                    acc += Winv[m, j] * r[j]
                dz[m] = acc
        else:
            apply_inverse(W, piv, Winv, r, dz)
        counters[NSOLVE] += 1
        squares = 0.0
        for m in range(n):
            stages[i, m] += dz[m]
            ratio = dz[m] / scale[m]
            squares += ratio * ratio
        ndz = math.sqrt(squares / n)               # scaled RMS of the correction
        if not math.isfinite(ndz):
            return -1
        if k >= min_iterations and ndz <= floor:   # round-off: no rate to read
            state[ETA] = eta
            return k
        if previous >= 0.0:
            theta = ndz / previous if previous > 0.0 else 0.0
            if theta >= 1.0:
                return -1
            if theta ** float(MAX_ITERS - k) / (1.0 - theta) * ndz > KAPPA:
                return -1
            eta = theta / (1.0 - theta)
        if ndz == 0.0 or (k >= min_iterations and eta * ndz <= KAPPA):
            state[ETA] = eta
            return k
        previous = ndz
    return -1


@njit(cache=True)
def _finish(a, b, b_err, stiffly_accurate, u, dt, stages, u1, f1, err_sum):
    """u1 = u + sum_j w_j z_j (w the last row of a when stiffly accurate, else b), f1 =
    z_s / dt when stiffly accurate, and err_sum = sum_j b_err_j z_j."""
    s = b.shape[0]
    for k in range(u.shape[0]):
        acc, acc_err = 0.0, 0.0
        for j in range(s):
            w = a[s - 1, j] if stiffly_accurate != 0 else b[j]
            acc += w * stages[j, k]
            acc_err += b_err[j] * stages[j, k]
        u1[k] = u[k] + acc
        err_sum[k] = acc_err
        if stiffly_accurate != 0:
            f1[k] = stages[s - 1, k] / dt


@njit(cache=True)
def _attempt(f, tab, t, u, f0, dt, p, rtol, atol, J, W, Winv, piv, state, work, stages,
             u1, err, f1, counters):
    """One try of the step with the J at hand. Loops are written out rather than calls made
    per stage or iteration: a call of a compiled function with array arguments costs tens
    of nanoseconds (reference counts), more than the arithmetic on a small system."""
    a, b, c, b_err, gamma, stiffly_accurate = tab
    n, s = u.shape[0], b.shape[0]
    if not _factor(J, gamma, dt, W, Winv, piv, state, counters):
        return SINGULAR_W
    scale, tmp = work[0], u1                       # u1 is free until the end: the stage sums
    squares = 0.0
    for k in range(n):
        scale[k] = atol[k] + rtol[k] * abs(u[k])
        stages[0, k] = dt * f0[k]
        ratio = u[k] / scale[k]
        squares += ratio * ratio
    floor = EPS * math.sqrt(squares / n)          # the state's round-off in Newton's norm
    state[SLOW] = 0.0
    min_iterations = 1 if state[FRESH_T] == t else 2
    for i in range(1, s):
        for k in range(n):
            acc = 0.0
            for j in range(i):
                acc += a[i, j] * stages[j, k]
            tmp[k] = u[k] + acc
            stages[i, k] = stages[i - 1, k]        # the guess: the previous stage
        iterations = _newton(f, t + c[i] * dt, tmp, p, dt, gamma, i, stages, scale, floor, W,
                             Winv, piv, state, min_iterations, work, counters)
        if iterations < 0:
            return NEWTON_FAILED
        if iterations > SLOW_ITERATIONS:
            state[SLOW] = 1.0
    _finish(a, b, b_err, stiffly_accurate, u, dt, stages, u1, f1, work[1])
    apply_inverse(W, piv, Winv, work[1], err)
    counters[NSOLVE] += 1
    return OK


@njit(cache=True)
def esdirk_step(f, jac, tab, t, u, f0, dt, p, rtol, atol, J, W, Winv, piv, state, work,
                stages, u1, err, f1, counters):
    if math.isnan(state[FRESH_T]) or (state[SLOW] != 0.0 and state[FRESH_T] != t):
        _refresh_jacobian(jac, t, u, p, J, state, counters)
    while True:
        status = _attempt(f, tab, t, u, f0, dt, p, rtol, atol, J, W, Winv, piv, state, work,
                          stages, u1, err, f1, counters)
        if status == OK or state[FRESH_T] == t:
            return status
        # Newton failed (or W was singular) with a Jacobian from an earlier point: refresh
        # it and try once more.
        _refresh_jacobian(jac, t, u, p, J, state, counters)
