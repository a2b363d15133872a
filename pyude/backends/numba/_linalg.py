"""Dense linear algebra for the stiff step kernels: LU with partial pivoting, in place.

The twin of `pyude.solvers._linear`: up to `SMALL_N` unknowns W^-1 is formed once per
factorisation and every stage costs one matrix-vector product (as `factorise` does with
`inv_ex`); larger systems keep the LU factors and solve with them. A W is refused (the step
fails, the loop shrinks dt) when a pivot is exactly zero, as LAPACK's getrf reports it, or
when its inverse (or factors) are not finite.

Signatures (all `@njit(cache=True)`; float64 arrays C-contiguous, n = W.shape[0]):

    lu_factor(A: f8[:, ::1], piv: i8[::1]) -> bool
        A <- its LU factors (unit L below the diagonal, U on and above), piv[k] the row
        swapped with row k; False at an exactly zero pivot.
    lu_solve(LU: f8[:, ::1], piv: i8[::1], x: f8[::1]) -> None
        x <- A^-1 x, in place.
    factorise(W: f8[:, ::1], piv: i8[::1], Winv: f8[:, ::1]) -> bool
        W <- its LU factors; Winv <- W^-1 when n <= SMALL_N (else untouched); False when W
        is singular or the result is not finite.
    apply_inverse(W, piv, Winv, b: f8[::1], x: f8[::1]) -> None
        x <- W^-1 b from `factorise`'s output; x must not alias b.

Also the step kernels' shared conventions: their return statuses and the layout of the work
counters they increment.
"""

from __future__ import annotations

import math

from numba import njit

SMALL_N = 16

# Statuses the step kernels return: OK, or a step the loop retries with a smaller dt.
OK = 0
SINGULAR_W = 1
NEWTON_FAILED = 2

# counters: int64[4], incremented as the torch steppers count (Stats.nf, njacs, nw, nsolve)
NF, NJACS, NW, NSOLVE = 0, 1, 2, 3


@njit(cache=True)
def lu_factor(A, piv):
    n = A.shape[0]
    for k in range(n):
        p, big = k, abs(A[k, k])
        for i in range(k + 1, n):              # the first largest, as LAPACK's idamax
            if abs(A[i, k]) > big:
                p, big = i, abs(A[i, k])
        piv[k] = p
        if A[p, k] == 0.0:
            return False
        if p != k:
            for j in range(n):
                A[k, j], A[p, j] = A[p, j], A[k, j]
        pivot = A[k, k]
        for i in range(k + 1, n):
            A[i, k] /= pivot
            m = A[i, k]
            if m != 0.0:
                for j in range(k + 1, n):
                    A[i, j] -= m * A[k, j]
    return True


@njit(cache=True)
def lu_solve(LU, piv, x):
    n = LU.shape[0]
    for k in range(n):
        p = piv[k]
        if p != k:
            x[k], x[p] = x[p], x[k]
    for i in range(n):
        acc = x[i]
        for k in range(i):
            acc -= LU[i, k] * x[k]
        x[i] = acc
    for i in range(n - 1, -1, -1):
        acc = x[i]
        for k in range(i + 1, n):
            acc -= LU[i, k] * x[k]
        x[i] = acc / LU[i, i]


@njit(cache=True)
def _invert(LU, piv, Winv):
    """Winv <- A^-1, all columns at once: row operations keep the access contiguous."""
    n = LU.shape[0]
    Winv[:, :] = 0.0
    for i in range(n):
        Winv[i, i] = 1.0
    for k in range(n):
        p = piv[k]
        if p != k:
            for j in range(n):
                Winv[k, j], Winv[p, j] = Winv[p, j], Winv[k, j]
    for i in range(n):
        for k in range(i):
            m = LU[i, k]
            if m != 0.0:
                for j in range(n):
                    Winv[i, j] -= m * Winv[k, j]
    for i in range(n - 1, -1, -1):
        for k in range(i + 1, n):
            m = LU[i, k]
            if m != 0.0:
                for j in range(n):
                    Winv[i, j] -= m * Winv[k, j]
        d = LU[i, i]
        for j in range(n):
            Winv[i, j] /= d


@njit(cache=True)
def _all_finite(M):
    for i in range(M.shape[0]):
        for j in range(M.shape[1]):
            if not math.isfinite(M[i, j]):
                return False
    return True


@njit(cache=True)
def factorise(W, piv, Winv):
    if not lu_factor(W, piv):
        return False
    if W.shape[0] <= SMALL_N:
        _invert(W, piv, Winv)
        return _all_finite(Winv)
    return _all_finite(W)


@njit(cache=True)
def apply_inverse(W, piv, Winv, b, x):
    if W.shape[0] <= SMALL_N:
        _product(Winv, b, x)
    else:
        _lu_apply(W, piv, b, x)


@njit(cache=True)
def _product(M, b, x):
    n = M.shape[0]
    for i in range(n):
        acc = 0.0
        for j in range(n):
            acc += M[i, j] * b[j]
        x[i] = acc


@njit(cache=True)
def _lu_apply(LU, piv, b, x):
    for k in range(b.shape[0]):
        x[k] = b[k]
    lu_solve(LU, piv, x)
