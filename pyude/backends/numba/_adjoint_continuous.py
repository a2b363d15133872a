"""The continuous adjoint on the numba backend: the adjoint ODE solved backwards by the loop
kernel itself, with the same method as the forward solve (stiff methods included).

For a loss of the saved states, lambda(t) solves d lambda/dt = -J(t, u(t))^T lambda from the
last saved time back to t0, jumping by the loss's cotangent at every saved time, and the
parameter gradient mu(t0) = int lambda^T df/dp dt is carried in the same system:
y = (lambda, mu), dy/dt = -(J^T lambda, (df/dp)^T lambda). u(t) is the forward solve's
dense output (the stiff-aware Rosenbrock interpolant, else cubic Hermite), read from the
forward kernel's step storage.

The loop kernel takes functions of the fixed signatures `RHS_SIG`, `JAC_SIG`, `DFDT_SIG`
with one parameter array, so the adjoint system's functions read everything from one
packed array P (`pack_adjoint`): a header, the model's p, and the forward steps. They are
printed into the model's generated module (`ADJOINT_SOURCE`), where they call its `vjp`
as a module-level function (so numba caches them; a function passed as an argument is a
dynamic global, which it does not cache):
the Jacobian of the adjoint system is [[-J^T, 0], [-(df/dp)^T, 0]], built from n VJPs with
unit vectors; its df/dt by a central difference in t.
"""

from __future__ import annotations

import numpy as np
from numba import njit, types

from ._erk import erk_dense_stages
from ._lazy import on_first_call
from ._loop import FAMILY_ERK, FAMILY_ROSENBROCK, _stiff_interpolate
from ._types import CUBE, IVEC, MAT, RHS_FN, VEC

# the header of P
H_N, H_K, H_NSTEPS, H_WIDTH, H_RROWS, H_RDEG, H_TDIR, H_EROWS, H_EDEG, H_ES = range(10)
HEADER = 10

# printed into a generated module that defines `vjp` (signatures from `_types`)
ADJOINT_SOURCE = '''

from pyude.backends.numba._adjoint_continuous import HEADER, adjoint_jac_fill, forward_state


@njit(RHS_SIG, cache=True)
def adj_rhs(t, y, P, out):
    n, k = int(P[0]), int(P[1])
    p = P[HEADER:HEADER + k]
    buf = np.empty(3 * n + k)
    ut = buf[:n]
    gu = buf[n:2 * n]
    gp = buf[2 * n:2 * n + k]
    gp[:] = 0.0
    forward_state(t, P, ut)
    vjp(t, ut, p, y[:n], gu, gp)
    for j in range(n):
        out[j] = -gu[j]
    for q in range(k):
        out[n + q] = -gp[q]


@njit(JAC_SIG, cache=True)
def adj_jac(t, y, P, J):
    n, k = int(P[0]), int(P[1])
    p = P[HEADER:HEADER + k]
    ut = np.empty(n)
    forward_state(t, P, ut)
    e = np.zeros(n)
    row = np.empty(n)
    gp = np.empty(k)
    J[:, :] = 0.0
    for i in range(n):
        e[:] = 0.0
        e[i] = 1.0
        gp[:] = 0.0
        vjp(t, ut, p, e, row, gp)
        adjoint_jac_fill(J, i, row, gp)


@njit(DFDT_SIG, cache=True)
def adj_dfdt(t, y, P, out):
    m = out.shape[0]
    h = 1.4901161193847656e-08 * max(1.0, abs(t))
    hi = np.empty(m)
    lo = np.empty(m)
    adj_rhs(t + h, y, P, hi)
    adj_rhs(t - h, y, P, lo)
    for j in range(m):
        out[j] = (hi[j] - lo[j]) / (2.0 * h)
'''


def pack_adjoint(p: np.ndarray, steps: np.ndarray, step_u: np.ndarray, step_f: np.ndarray,
                 step_k: np.ndarray, families: np.ndarray, rpoly: np.ndarray,
                 tdir: float, epoly: np.ndarray, erk_stages: int) -> np.ndarray:
    """P for the adjoint system's functions: header, p, (t0, dt, family) per step, boundary
    states and derivatives, stages, the Rosenbrock dense polynomial, then the explicit
    method's (`epoly`: empty when the method has none or needs extra stages, which the
    adjoint does not recompute: its steps are then read by cubic Hermite)."""
    nsteps, width, n = step_k.shape
    header = np.zeros(HEADER)
    header[H_N], header[H_K], header[H_NSTEPS], header[H_WIDTH] = n, p.shape[0], nsteps, width
    header[H_RROWS], header[H_RDEG] = rpoly.shape if rpoly.size else (0, 0)
    header[H_TDIR] = tdir
    header[H_EROWS], header[H_EDEG] = epoly.shape if epoly.size else (0, 0)
    header[H_ES] = erk_stages
    table = np.column_stack([steps[:, 0], steps[:, 1], families[:nsteps].astype(np.float64)])
    return np.concatenate([header, p, table.ravel(), step_u.ravel(), step_f.ravel(),
                           step_k.ravel(), rpoly.ravel(), epoly.ravel()])


DENSE_STAGES_SIG = CUBE(RHS_FN, VEC, MAT, MAT, MAT, CUBE, types.int64, IVEC, MAT, VEC)


@on_first_call(DENSE_STAGES_SIG, nogil=True)
def all_dense_stages(rhs, p, steps, step_u, step_f, step_k, s, flags, extra_a, extra_c):
    """Every explicit step's interpolant stages (the step's, f1 unless FSAL, then the extra
    stages Vern7's dense output needs), as the forward solve's saveat computed them."""
    nsteps, _, n = step_k.shape
    rows = s + (0 if flags[0] != 0 else 1) + extra_c.shape[0]
    out = np.zeros((nsteps, rows, n))
    for i in range(nsteps):
        erk_dense_stages(rhs, p, steps[i, 0], steps[i, 1], step_u[i], step_f[i + 1],
                         step_k[i, :s], flags, extra_a, extra_c, out[i])
    return out


@njit(cache=True)
def _views(P):
    n, k, nsteps = int(P[H_N]), int(P[H_K]), int(P[H_NSTEPS])
    width, rrows, rdeg = int(P[H_WIDTH]), int(P[H_RROWS]), int(P[H_RDEG])
    i = HEADER
    p = P[i:i + k]
    i += k
    table = P[i:i + 3 * nsteps].reshape((nsteps, 3))
    i += 3 * nsteps
    us = P[i:i + (nsteps + 1) * n].reshape((nsteps + 1, n))
    i += (nsteps + 1) * n
    fs = P[i:i + (nsteps + 1) * n].reshape((nsteps + 1, n))
    i += (nsteps + 1) * n
    stages = P[i:i + nsteps * width * n].reshape((nsteps, width, n))
    i += nsteps * width * n
    rpoly = P[i:i + rrows * rdeg].reshape((rrows, rdeg))
    i += rrows * rdeg
    erows, edeg = int(P[H_EROWS]), int(P[H_EDEG])
    epoly = P[i:i + erows * edeg].reshape((erows, edeg))
    return n, k, p, table, us, fs, stages, rpoly, epoly


@njit(cache=True)
def forward_state(t, P, ut):
    """u(t) from the forward solve's dense output (the step containing t, continued a
    little past either end)."""
    n, _k, _p, table, us, fs, stages, rpoly, epoly = _views(P)
    tdir = P[H_TDIR]
    nsteps = table.shape[0]
    lo, hi = 0, nsteps - 1
    x = tdir * t
    while lo < hi:                       # the last step starting at or before t
        mid = (lo + hi + 1) // 2
        if tdir * table[mid, 0] <= x:
            lo = mid
        else:
            hi = mid - 1
    i = lo
    t0, dt, family = table[i, 0], table[i, 1], int(table[i, 2])
    theta = (t - t0) / dt
    if theta == 0.0:
        ut[:] = us[i]
    elif theta == 1.0:
        ut[:] = us[i + 1]
    elif family == FAMILY_ERK and epoly.shape[0] > 0:
        # the method's own dense output; row s (a non-FSAL method's) is f(t1, u1)
        s_erk = int(P[H_ES])
        for j in range(n):
            ut[j] = 0.0
        for r in range(epoly.shape[0]):
            w = 0.0
            power = 1.0
            for q in range(epoly.shape[1]):
                power *= theta
                w += epoly[r, q] * power
            row = stages[i, r] if r < s_erk or s_erk == 0 else fs[i + 1]
            for j in range(n):
                ut[j] += w * row[j]
        for j in range(n):
            ut[j] = us[i, j] + dt * ut[j]
    else:
        fam = family if family == FAMILY_ROSENBROCK else -1
        _stiff_interpolate(ut, theta, dt, us[i], us[i + 1], fs[i], fs[i + 1], rpoly,
                           stages[i], fam)


@njit(cache=True)
def adjoint_jac_fill(J, i, row, gp):
    """Column i of the adjoint system's Jacobian from row i of J_f (`row`) and of df/dp
    (`gp`): d(-J_f^T a)_j / d a_i = -J_f[i, j], d(-(df/dp)^T a)_q / d a_i = -df_i/dp_q."""
    n = row.shape[0]
    for j in range(n):
        J[j, i] = -row[j]
    for q in range(gp.shape[0]):
        J[n + q, i] = -gp[q]
