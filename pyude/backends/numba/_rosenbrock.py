"""The Rosenbrock step as a numba kernel: `pyude.solvers._rosenbrock.AbstractRosenbrock.step`
(its host path) with the model's f, analytic Jacobian and df/dt as function values.

With W = I / (dt gamma) - J (J = df/du, T = df/dt at the step's start), stage i solves
W U_i = f(t + c_i dt, u + sum_j A_ij U_j) + sum_j (C_ij / dt) U_j + dt d_i T, and
u1 = u + sum_i b_i U_i, err = sum_i b_err_i U_i (before the norm). The stages U_i are the
torch stepper's `StepResult.stages`, so its `interpolate` gives the dense output from them.

Python side:

    rosenbrock_arrays(solver: AbstractRosenbrock) -> tab
        tab = (A, C, c, d, b, b_err, new_f, gamma, fsal), of numba type ROSENBROCK_TAB:
        A, C: f8[:, ::1] (s, s); c, d, b, b_err: f8[::1] (s,); new_f: i8[::1] (s,), 1 where
        stage i calls f (else it reuses the previous stage's f); gamma: float; fsal: int,
        1 when the last stage's f is f(t + dt, u1).

Kernels (`@njit(cache=True)`):

    rosenbrock_workspace(n: int, s: int) -> (J, dT, jkey, W, Winv, piv, work, stages)
        J (n, n), dT (n,), jkey (2,), W (n, n), Winv (n, n), piv int64 (n,), work (3, n),
        stages (s, n); jkey = [0, nan] (no Jacobian yet). One set per trajectory and solve.

    rosenbrock_step(f: RHS_FN, jac: JAC_FN, dfdt: DFDT_FN, tab: ROSENBROCK_TAB, t: f8,
                    u: f8[::1], f0: f8[::1], dt: f8, p: f8[::1],
                    J, dT, jkey, W, Winv, piv, work, stages,
                    u1: f8[::1], err: f8[::1], f1: f8[::1], counters: i8[::1]) -> int64
        f0 = f(t, u). Writes u1, err, stages (U_1 .. U_s as rows), f1 = f(t + dt, u1) when
        fsal (else f1 untouched); counters [nf, njacs, nw, nsolve] += this step's work.
        Returns OK (0) or SINGULAR_W (1; u1, err, stages then meaningless). Its numba
        type is ROSENBROCK_STEP_SIG (f, jac, dfdt as RHS_FN, JAC_FN, DFDT_FN of `_types`).
        u1, err, f1 must not alias u or f0.
        J and dT are taken at (t, u) unless jkey says they already were (jkey = [1, t]): a
        rejected step retried from the same point reuses them, as the torch stepper's cache
        does; so njacs counts the points steps start from. A loop that takes the next
        step's J itself at an accepted step's end (as `derivative_at` does) writes J, dT
        and jkey = [1, t_new]. jkey[0] = 0 only for a new solve (within one solve t never
        returns to an earlier value).
"""

from __future__ import annotations

import numpy as np
from numba import njit, types

from ._linalg import NF, NJACS, NSOLVE, NW, OK, SINGULAR_W, SMALL_N, apply_inverse, factorise
from ._types import DFDT_FN, IVEC, JAC_FN, MAT, RHS_FN, VEC

_F8 = types.float64
ROSENBROCK_TAB = types.Tuple((MAT, MAT, VEC, VEC, VEC, VEC, IVEC, _F8, types.int64))
# `rosenbrock_step`'s type with the model as function values, for a kernel compiled with
# explicit signatures.
ROSENBROCK_STEP_SIG = types.int64(RHS_FN, JAC_FN, DFDT_FN, ROSENBROCK_TAB, _F8, VEC, VEC, _F8,
                                  VEC, MAT, VEC, VEC, MAT, MAT, IVEC, MAT, MAT, VEC, VEC, VEC,
                                  IVEC)


def rosenbrock_arrays(solver) -> tuple:
    """The solver's tableau as the kernel reads it (see the module docstring)."""
    tab = solver.tableau
    arr = np.ascontiguousarray
    return (arr(tab.A, dtype=np.float64), arr(tab.C, dtype=np.float64),
            arr(tab.c, dtype=np.float64), arr(tab.d, dtype=np.float64),
            arr(tab.b, dtype=np.float64), arr(tab.b_err, dtype=np.float64),
            np.array(tab.new_f, dtype=np.int64), float(tab.gamma), int(tab.fsal))


@njit(cache=True)
def rosenbrock_workspace(n, s):
    jkey = np.zeros(2)
    jkey[1] = np.nan
    return (np.zeros((n, n)), np.zeros(n), jkey, np.zeros((n, n)), np.zeros((n, n)),
            np.zeros(n, dtype=np.int64), np.zeros((3, n)), np.zeros((s, n)))


@njit(cache=True)
def _jacobian_at(jac, dfdt, t, u, p, J, dT, jkey, counters):
    """J and df/dt at (t, u), unless they were taken there already."""
    if jkey[0] != 0.0 and jkey[1] == t:
        return
    jac(t, u, p, J)
    dfdt(t, u, p, dT)
    jkey[0], jkey[1] = 1.0, t
    counters[NJACS] += 1


@njit(cache=True)
def _factor_w(J, gamma, dt, W, Winv, piv, counters):
    """W = I / (dt gamma) - J, factorised (and inverted up to SMALL_N unknowns)."""
    n = J.shape[0]
    diag = 1.0 / (dt * gamma)
    for i in range(n):
        for j in range(n):
            W[i, j] = -J[i, j]
        W[i, i] = diag - J[i, i]
    counters[NW] += 1
    return factorise(W, piv, Winv)


@njit(cache=True)
def _combine(b, b_err, u, stages, u1, err):
    """u1 = u + sum_i b_i U_i and err = sum_i b_err_i U_i."""
    for k in range(u.shape[0]):
        acc, acc_err = 0.0, 0.0
        for j in range(b.shape[0]):
            acc += b[j] * stages[j, k]
            acc_err += b_err[j] * stages[j, k]
        u1[k] = u[k] + acc
        err[k] = acc_err


@njit(cache=True)
def rosenbrock_step(f, jac, dfdt, tab, t, u, f0, dt, p, J, dT, jkey, W, Winv, piv, work,
                    stages, u1, err, f1, counters):
    A, C, c, d, b, b_err, new_f, gamma, fsal = tab
    n, s = u.shape[0], b.shape[0]
    _jacobian_at(jac, dfdt, t, u, p, J, dT, jkey, counters)
    if not _factor_w(J, gamma, dt, W, Winv, piv, counters):
        return SINGULAR_W
    x, rhs, du = work[0], work[1], work[2]
    for k in range(n):
        du[k] = f0[k]
    inv_dt = 1.0 / dt
    # The stage loop is written out: a call of a compiled function with array arguments
    # costs tens of nanoseconds (reference counts), more than a stage's arithmetic on a
    # small system; with a helper per sum and solve Rodas5P's step on ROBER took 2-2.6x longer.
    for i in range(s):
        if i > 0 and new_f[i] != 0:
            for k in range(n):
                acc = 0.0
                for j in range(i):
                    acc += A[i, j] * stages[j, k]
                x[k] = u[k] + acc
            f(t + c[i] * dt, x, p, du)
            counters[NF] += 1
        for k in range(n):
            acc = 0.0
            for j in range(i):
                acc += (C[i, j] * inv_dt) * stages[j, k]
            rhs[k] = du[k] + (acc + (d[i] * dt) * dT[k])
        if n <= SMALL_N:                               # W^-1 b, as `apply_inverse` forms it
            for k in range(n):
                acc = 0.0
                for j in range(n):
                    acc += Winv[k, j] * rhs[j]
                stages[i, k] = acc
        else:
            apply_inverse(W, piv, Winv, rhs, stages[i])
    counters[NSOLVE] += s
    _combine(b, b_err, u, stages, u1, err)
    if fsal != 0:
        for k in range(n):
            f1[k] = du[k]
    return OK
