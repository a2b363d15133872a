"""The automatic stiffness switch inside the kernels, as `pyude.solvers._autoswitch`: after
every accepted step |lambda| is estimated from the explicit method's last two stages or as
|J|_inf from the stiff method's Jacobian, and `maxstiffstep` stiff verdicts in a row switch
to the stiff method (dt times dtfac), `maxnonstiffstep` non-stiff ones switch back.

Settings are a float64 array (`SW_*`, packed by `pack_switch`); the state is the count of
verdicts in a row and whether the stiff method is on, kept by the loop.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ...solvers._autoswitch import AutoSwitch

SW_ON, SW_MAXSTIFF, SW_MAXNONSTIFF, SW_NONSTIFFTOL, SW_STIFFTOL, SW_DTFAC = 0, 1, 2, 3, 4, 5
SW_STIFF_FIRST, SW_STABILITY, SW_STIFF_ORDER = 6, 7, 8
SW_SIZE = 9


def pack_switch(solver) -> np.ndarray:
    """The switch's settings, or an array with SW_ON = 0 for a single method."""
    out = np.zeros(SW_SIZE)
    if not isinstance(solver, AutoSwitch):
        return out
    out[SW_ON] = 1.0
    out[SW_MAXSTIFF], out[SW_MAXNONSTIFF] = solver.maxstiffstep, solver.maxnonstiffstep
    out[SW_NONSTIFFTOL], out[SW_STIFFTOL] = solver.nonstifftol, solver.stifftol
    out[SW_DTFAC] = solver.dtfac
    out[SW_STIFF_FIRST] = float(solver.stiffalgfirst)
    out[SW_STABILITY] = solver.nonstiff.stability_size
    out[SW_STIFF_ORDER] = solver.stiff.order
    return out


@njit(cache=True)
def explicit_eigen(u, dt, A, K):
    """|lambda| from the explicit method's two c = 1 stages (Hairer and Wanner II, IV.2):
    |k_s - k_s-1| / |g_s - g_s-1| with g the stages' states."""
    s, n = K.shape
    num = 0.0
    den = 0.0
    for j in range(n):
        last = 0.0
        for k in range(s - 1):
            last += A[s - 1, k] * K[k, j]
        prev = 0.0
        for k in range(s - 2):
            prev += A[s - 2, k] * K[k, j]
        g = (u[j] + dt * last) - (u[j] + dt * prev)
        dk = K[s - 1, j] - K[s - 2, j]
        num += dk * dk
        den += g * g
    num, den = math.sqrt(num), math.sqrt(den)
    return num / den if den > 0 else 0.0


@njit(cache=True)
def jacobian_eigen(J):
    """|J|_inf, the largest absolute row sum."""
    worst = 0.0
    for i in range(J.shape[0]):
        row = 0.0
        for j in range(J.shape[1]):
            row += abs(J[i, j])
        worst = max(worst, row)
    return worst


@njit(cache=True)
def switch_verdict(sw, eigen, dt, is_stiff, count):
    """After an accepted step: (is_stiff, count, factor), the loop dividing its step factor
    q by `factor` as the torch loop divides by `on_accept`'s return."""
    stiffness = abs(eigen * dt) / sw[SW_STABILITY]
    stiff_now = stiffness > (sw[SW_STIFFTOL] if is_stiff else sw[SW_NONSTIFFTOL])
    if stiff_now:
        count = 1 if count < 0 else count + 1
    else:
        count = -1 if count > 0 else count - 1
    if not is_stiff and count > sw[SW_MAXSTIFF]:
        return True, count, sw[SW_DTFAC]
    if is_stiff and count < -sw[SW_MAXNONSTIFF]:
        return False, count, 1.0 / sw[SW_DTFAC]
    return is_stiff, count, 1.0
