"""The explicit Runge-Kutta step and its dense output as numba functions, reading the same
tableau arrays as `pyude.solvers._erk.AbstractERK` (packed by `pack_erk`).

The stages are kept as `AbstractERK.step` keeps them (row 0 is f0, row i the stage at
t + c_i dt), so that the Python side can rebuild a `StepRecord` and interpolate with the
unchanged torch method.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from ...solvers._erk import AbstractERK

# ERK flags
FLAG_FSAL, FLAG_ADAPTIVE, FLAG_ORDER, FLAG_DENSE = 0, 1, 2, 3


@dataclass(frozen=True)
class ERKArrays:
    """A tableau as the kernels read it; empty arrays where the method has no such part."""

    A: np.ndarray
    b: np.ndarray
    c: np.ndarray
    b_err: np.ndarray
    poly: np.ndarray
    extra_a: np.ndarray
    extra_c: np.ndarray
    flags: np.ndarray

    def astuple(self) -> tuple:
        return (self.A, self.b, self.c, self.b_err, self.poly, self.extra_a, self.extra_c,
                self.flags)


def pack_erk(solver: AbstractERK) -> ERKArrays:
    tab = solver.tableau
    s = tab.stages
    dense = tab.dense
    flags = np.array([int(tab.fsal), int(tab.b_err is not None), int(solver.order),
                      int(dense is not None)], dtype=np.int64)
    contiguous = np.ascontiguousarray
    return ERKArrays(
        A=contiguous(tab.a), b=contiguous(tab.b), c=contiguous(tab.c),
        b_err=contiguous(tab.b_err if tab.b_err is not None else np.zeros(s)),
        poly=contiguous(dense.poly if dense is not None else np.zeros((0, 0))),
        extra_a=contiguous(dense.extra_a if dense is not None else np.zeros((0, 0))),
        extra_c=contiguous(dense.extra_c if dense is not None else np.zeros(0)),
        flags=flags)


def empty_erk() -> ERKArrays:
    """Placeholder arrays for a solve that takes no explicit steps."""
    return ERKArrays(np.zeros((1, 1)), np.ones(1), np.zeros(1), np.zeros(1), np.zeros((0, 0)),
                     np.zeros((0, 0)), np.zeros(0), np.zeros(4, dtype=np.int64))


@njit(cache=True)
def _combine(out, u, dt, coeffs, K, count):
    """out = u + dt * sum_k coeffs[k] K[k] over the first `count` rows (the sum first, as
    torch's addmm does)."""
    n = out.shape[0]
    for j in range(n):
        acc = 0.0
        for k in range(count):
            acc += coeffs[k] * K[k, j]
        out[j] = u[j] + dt * acc


@njit(cache=True)
def erk_step(rhs, p, t, u, f0, dt, A, b, c, b_err, flags, K, u1, err, work):
    """One trial step from (t, u) with f0 = f(t, u): fills the stages K (s, n), the new
    state u1 and, for an adaptive method, the error estimate err. Returns the number of
    calls of f."""
    s = K.shape[0]
    K[0, :] = f0
    state = work
    state[:] = u
    for i in range(1, s):
        used = False
        for k in range(i):
            used = used or A[i, k] != 0.0
        if used:
            _combine(state, u, dt, A[i], K, i)
        else:
            state[:] = u
        rhs(t + c[i] * dt, state, p, K[i])
    if flags[FLAG_FSAL] != 0:
        u1[:] = state
    else:
        _combine(u1, u, dt, b, K, s)
    if flags[FLAG_ADAPTIVE] != 0:
        for j in range(u.shape[0]):
            acc = 0.0
            for k in range(s):
                acc += b_err[k] * K[k, j]
            err[j] = acc * dt
    return s - 1


@njit(cache=True)
def hermite(out, theta, dt, u0, u1, f0, f1):
    """Cubic Hermite interpolation from the end values and slopes (`solvers._dense`)."""
    for j in range(out.shape[0]):
        out[j] = ((1 - theta) * u0[j] + theta * u1[j] + theta * (theta - 1) * (
            (1 - 2 * theta) * (u1[j] - u0[j]) + (theta - 1) * dt * f0[j]
            + theta * dt * f1[j]))


@njit(cache=True)
def erk_dense_stages(rhs, p, t0, dt, u0, f1, K, flags, extra_a, extra_c, KD):
    """The interpolant's stages in KD: the step's stages, f(t1, u1) unless FSAL holds it
    already, then the extra stages (Vern7). Returns the number of calls of f."""
    s, n = K.shape
    KD[:s] = K
    m = s
    if flags[FLAG_FSAL] == 0:
        KD[m] = f1
        m += 1
    calls = 0
    state = np.empty(n)
    for r in range(extra_c.shape[0]):
        _combine(state, u0, dt, extra_a[r], KD, m)
        rhs(t0 + extra_c[r] * dt, state, p, KD[m])
        m += 1
        calls += 1
    return calls


@njit(cache=True)
def dense_weights(poly, theta, out):
    """b_i(theta) = sum_j poly[i, j] theta^(j+1), a `DenseTableau`'s weights, into `out`."""
    rows, degree = poly.shape
    for i in range(rows):
        acc = 0.0
        power = 1.0
        for j in range(degree):
            power *= theta
            acc += poly[i, j] * power
        out[i] = acc


@njit(cache=True)
def erk_interpolate(out, theta, dt, u0, u1, f0, f1, poly, KD):
    """The method's own dense output at theta (`AbstractERK.interpolate`), with KD from
    `erk_dense_stages`, or Hermite's when the method has none."""
    rows, degree = poly.shape
    if rows == 0:
        hermite(out, theta, dt, u0, u1, f0, f1)
        return
    weights = np.zeros(rows)
    dense_weights(poly, theta, weights)
    _combine(out, u0, dt, weights, KD, rows)
