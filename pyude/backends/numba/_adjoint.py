"""The discrete adjoint of an explicit Runge-Kutta solve on the numba backend: the exact
gradient of the computed solution with the accepted step sizes held constant, which is what
backpropagation through the torch steps (`DirectAdjoint`) computes.

The forward kernel (`_loop.solve_one`, run with dense output) stores every accepted step's
(t0, dt), boundary states u_i and derivatives f_i = f(t_i, u_i), and stages. The kernel
here walks the steps backwards:

- the cotangents of the saved values go to the boundary states (a save at a step's end)
  or through the step's interpolant (the method's dense output, with its extra stages, or
  cubic Hermite) to the step's stages, u_i, and f_{i+1};
- f_{i+1} is the next step's first stage; for an FSAL method it is this step's last stage,
  otherwise f(t_{i+1}, u_{i+1}) and its cotangent goes through the model's VJP;
- u_{i+1} = u_i + dt sum_k b_k K_k, and each stage K_j = f(t + c_j dt, u_i + dt sum_k
  A_jk K_k) is reversed with the model's VJP at the recomputed stage state.

Stage states are recomputed from the stored stages with the forward kernel's arithmetic, so
they are bit-identical to the forward pass. Memory is that of the dense output (the stages
of every step).
"""

from __future__ import annotations

import numpy as np
from numba import njit, types

from ._adjoint_codegen import VJP_FN
from ._lazy import on_first_call
from ._erk import FLAG_FSAL, _combine, dense_weights
from ._loop import snap
from ._types import CUBE, IVEC, MAT, RHS_FN, VEC

_F8 = types.float64
ERK_ADJOINT_SIG = types.Tuple((VEC, VEC))(
    RHS_FN, VJP_FN, VEC,                       # rhs, vjp, p
    MAT, VEC, MAT, CUBE,                       # steps (t0, dt), boundary times, u_i, stages
    VEC, types.int64, MAT,                     # saveat, has_saveat, cotangents of the saves
    MAT, VEC, VEC, MAT, MAT, VEC, IVEC,        # A, b, c, dense poly, extra a, extra c, flags
)


@njit(cache=True)
def _transpose_combine(gu, G, dt, coeffs, g, count):
    """The cotangent of `_combine(out, u, dt, coeffs, K, count)` for g = dL/dout: g onto u's
    cotangent gu, and dt coeffs[k] g onto each stage's G[k]."""
    n = g.shape[0]
    for j in range(n):
        gu[j] += g[j]
    for q in range(count):
        w = dt * coeffs[q]
        if w != 0.0:
            for j in range(n):
                G[q, j] += w * g[j]


@njit(cache=True)
def _interp_back(g, theta, dt, poly, gu0, gu1, gKD, gf1, weights):
    """Cotangent g of an interpolated value at theta, spread over the step's inputs:
    Hermite's (u0, u1, f0 = stage 0, f1) or the method's dense stages."""
    n = g.shape[0]
    if poly.shape[0] == 0:
        c0 = (1 - theta) - theta * (theta - 1) * (1 - 2 * theta)
        c1 = theta + theta * (theta - 1) * (1 - 2 * theta)
        cf0 = theta * (theta - 1) * (theta - 1) * dt
        cf1 = theta * (theta - 1) * theta * dt
        for j in range(n):
            gu0[j] += c0 * g[j]
            gu1[j] += c1 * g[j]
            gKD[0, j] += cf0 * g[j]
            gf1[j] += cf1 * g[j]
        return
    dense_weights(poly, theta, weights)
    for r in range(poly.shape[0]):
        w = dt * weights[r]
        for j in range(n):
            gKD[r, j] += w * g[j]
    for j in range(n):
        gu0[j] += g[j]


@on_first_call(ERK_ADJOINT_SIG, nogil=True)
def erk_adjoint(rhs, vjp, p, steps, tb, step_u, step_k, saveat, has_saveat, g_us,
                A, b, c, poly, exa, exc, flags):
    """(dL/du0, dL/dp) from the cotangents g_us of the saved states (rows as the forward
    kernel saved them); steps, tb, step_u and step_k hold the accepted steps only."""
    nsteps = steps.shape[0]
    n = step_u.shape[1]
    s = A.shape[0]
    fsal = flags[FLAG_FSAL] != 0
    nextra = exc.shape[0]
    width = s + (0 if fsal else 1) + nextra
    gu = np.zeros((nsteps + 1, n))
    gf = np.zeros((nsteps + 1, n))
    gK = np.zeros((nsteps, max(width, 1), n))
    gp = np.zeros(p.shape[0])
    weights = np.empty(max(poly.shape[0], 1))
    tdir = 1.0 if nsteps == 0 or steps[0, 1] >= 0 else -1.0

    # the saves' cotangents onto boundary states, or through the steps' interpolants
    if has_saveat != 0:
        k = 0
        t0 = tb[0]
        while k < saveat.shape[0] and abs(saveat[k] - t0) <= snap(t0, t0):
            gu[0] += g_us[k]
            k += 1
        for i in range(nsteps):
            t, dt, t_new = steps[i, 0], steps[i, 1], tb[i + 1]
            while k < saveat.shape[0]:
                ts = saveat[k]
                if abs(ts - t_new) <= snap(ts, t_new):
                    gu[i + 1] += g_us[k]
                elif tdir * (ts - t_new) < 0:
                    _interp_back(g_us[k], (ts - t) / dt, dt, poly, gu[i], gu[i + 1], gK[i],
                                 gf[i + 1], weights)
                else:
                    break
                k += 1
    else:
        for i in range(nsteps + 1):
            gu[i] += g_us[i]

    gstate = np.empty(n)
    state = np.empty(n)
    KD = np.empty((max(width, 1), n))
    xstates = np.empty((max(nextra, 1), n))
    last = A[s - 1] if fsal else b
    for i in range(nsteps - 1, -1, -1):
        t, dt = steps[i, 0], steps[i, 1]
        u0 = step_u[i]
        K = step_k[i]
        G = gK[i]
        # the interpolant's extra stages (recomputed, then reversed)
        if nextra > 0:
            KD[:s] = K[:s]
            m = s
            if not fsal:
                rhs(tb[i + 1], step_u[i + 1], p, KD[m])
                m += 1
            for r in range(nextra):
                _combine(xstates[r], u0, dt, exa[r], KD, m)
                rhs(t + exc[r] * dt, xstates[r], p, KD[m])
                m += 1
            for r in range(nextra - 1, -1, -1):
                m -= 1
                vjp(t + exc[r] * dt, xstates[r], p, G[m], gstate, gp)
                _transpose_combine(gu[i], G, dt, exa[r], gstate, m)
        if not fsal and width > s:
            gf[i + 1] += G[s]
        # f_{i+1}: this step's last stage (FSAL) or f(t_{i+1}, u_{i+1})
        if fsal:
            G[s - 1] += gf[i + 1]
        else:
            vjp(tb[i + 1], step_u[i + 1], p, gf[i + 1], gstate, gp)
            gu[i + 1] += gstate
        # u_{i+1} = u_i + dt sum_k b_k K_k
        g1 = gu[i + 1]
        _transpose_combine(gu[i], G, dt, last, g1, s)
        # the stages, last first
        for jst in range(s - 1, 0, -1):
            used = False
            for q in range(jst):
                used = used or A[jst, q] != 0.0
            if used:
                _combine(state, u0, dt, A[jst], K, jst)
            else:
                state[:] = u0
            vjp(t + c[jst] * dt, state, p, G[jst], gstate, gp)
            _transpose_combine(gu[i], G, dt, A[jst], gstate, jst)
        gf[i] += G[0]
    vjp(tb[0], step_u[0], p, gf[0], gstate, gp)
    g0 = gu[0].copy()
    g0 += gstate
    return g0, gp
