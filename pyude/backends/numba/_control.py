"""Step-size control inside the kernels: the error norm, Hairer's initial step and the PI
and predictive controllers, each a transcription of its torch twin (`pyude._norms`,
`pyude.controllers`) so that both backends choose the same steps up to round-off.

A controller is a float64 array of settings (`CTRL_*` indices, packed by `pack_controller`)
and a float64 array of state (`STATE_*`), so that one compiled kernel serves both kinds.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ...controllers import PIController, PredictiveController

# settings
CTRL_KIND, CTRL_BETA1, CTRL_BETA2, CTRL_QOLDINIT, CTRL_QMIN, CTRL_QMAX = 0, 1, 2, 3, 4, 5
CTRL_QMAX_FIRST, CTRL_GAMMA, CTRL_QSTEADY_MIN, CTRL_QSTEADY_MAX = 6, 7, 8, 9
CTRL_SIZE = 10
KIND_PI, KIND_PREDICTIVE = 0.0, 1.0
# state
STATE_QOLD, STATE_NACCEPT, STATE_DTACC, STATE_ERRACC, STATE_REJECTED = 0, 1, 2, 3, 4
STATE_SIZE = 5


def pack_controller(controller: PIController | PredictiveController) -> np.ndarray:
    """The controller's settings as the kernels read them; an unset PI gain is NaN (the
    kernel then takes OrdinaryDiffEq's 7/(10 p), 2/(5 p) for the order of the step)."""
    out = np.full(CTRL_SIZE, np.nan)
    predictive = isinstance(controller, PredictiveController)
    out[CTRL_KIND] = KIND_PREDICTIVE if predictive else KIND_PI
    if not predictive:
        out[CTRL_BETA1] = np.nan if controller.beta1 is None else controller.beta1
        out[CTRL_BETA2] = np.nan if controller.beta2 is None else controller.beta2
        out[CTRL_QOLDINIT] = controller.qoldinit
    out[CTRL_QMIN], out[CTRL_QMAX] = controller.qmin, controller.qmax
    out[CTRL_QMAX_FIRST], out[CTRL_GAMMA] = controller.qmax_first_step, controller.gamma
    out[CTRL_QSTEADY_MIN] = controller.qsteady_min
    out[CTRL_QSTEADY_MAX] = controller.qsteady_max
    return out


@njit(cache=True)
def controller_start(ctrl, state):
    state[STATE_QOLD] = 1.0 if ctrl[CTRL_KIND] == KIND_PREDICTIVE else ctrl[CTRL_QOLDINIT]
    state[STATE_NACCEPT] = 0.0
    state[STATE_DTACC] = 0.0
    state[STATE_ERRACC] = 1.0
    state[STATE_REJECTED] = 0.0


@njit(cache=True)
def _betas(ctrl, order):
    beta1 = 7.0 / (10 * order) if math.isnan(ctrl[CTRL_BETA1]) else ctrl[CTRL_BETA1]
    beta2 = 2.0 / (5 * order) if math.isnan(ctrl[CTRL_BETA2]) else ctrl[CTRL_BETA2]
    return beta1, beta2


@njit(cache=True)
def _clamp(q, qmax, qmin):
    return max(1.0 / qmax, min(1.0 / qmin, q))


@njit(cache=True)
def accept_factor(ctrl, state, eest, dt, order):
    """The factor q with dt_new = dt / q after an accepted step (`accept_factor` of
    `PIController` and `PredictiveController`)."""
    qmax = ctrl[CTRL_QMAX_FIRST] if state[STATE_NACCEPT] == 0 else ctrl[CTRL_QMAX]
    qmin, gamma = ctrl[CTRL_QMIN], ctrl[CTRL_GAMMA]
    if ctrl[CTRL_KIND] == KIND_PREDICTIVE:
        q = _clamp(eest ** (1.0 / order) / gamma, qmax, qmin)
        if state[STATE_NACCEPT] > 0:
            qgus = abs(state[STATE_DTACC] / dt) * (
                eest ** 2 / state[STATE_ERRACC]) ** (1.0 / order) / gamma
            q = max(q, _clamp(qgus, qmax, qmin))
        if state[STATE_REJECTED] != 0.0:
            q = max(q, 1.0)
        state[STATE_DTACC] = dt
        state[STATE_ERRACC] = max(1e-2, eest)
        state[STATE_REJECTED] = 0.0
    else:
        beta1, beta2 = _betas(ctrl, order)
        q = eest ** beta1 / state[STATE_QOLD] ** beta2 / gamma
        q = _clamp(q, qmax, qmin)
        state[STATE_QOLD] = max(eest, ctrl[CTRL_QOLDINIT])
    if ctrl[CTRL_QSTEADY_MIN] <= q <= ctrl[CTRL_QSTEADY_MAX]:
        q = 1.0
    state[STATE_NACCEPT] += 1.0
    return q


@njit(cache=True)
def reject_factor(ctrl, state, eest, order):
    """The factor q with dt_new = dt / q after a rejected step (q > 1)."""
    qmin, gamma = ctrl[CTRL_QMIN], ctrl[CTRL_GAMMA]
    if ctrl[CTRL_KIND] == KIND_PREDICTIVE:
        state[STATE_REJECTED] = 1.0
        if state[STATE_NACCEPT] == 0:
            return 10.0
        return _clamp(eest ** (1.0 / order) / gamma, ctrl[CTRL_QMAX], qmin)
    beta1, _ = _betas(ctrl, order)
    return min(1.0 / qmin, eest ** beta1 / gamma)


@njit(cache=True)
def scaled_rms(x, scale):
    acc = 0.0
    for i in range(x.shape[0]):
        r = x[i] / scale[i]
        acc += r * r
    return math.sqrt(acc / x.shape[0])


@njit(cache=True)
def error_norm(err, u0, u1, rtol, atol, scale):
    """EEst of a trial step, NaN when the new state or the error is not finite
    (`pyude._norms.error_norm`)."""
    finite = True
    for i in range(u1.shape[0]):
        size = abs(u1[i])
        finite = finite and math.isfinite(size)
        scale[i] = max(abs(u0[i]), size) * rtol[i] + atol[i]
    worst = scaled_rms(err, scale)
    if not finite or not math.isfinite(worst):
        return math.nan
    return worst


@njit(cache=True)
def all_finite(x):
    for i in range(x.shape[0]):
        if not math.isfinite(x[i]):
            return False
    return True


@njit(cache=True)
def initial_dt(rhs, p, t0, u0, f0, tdir, order, rtol, atol, dtmax, dtmin, work):
    """Hairer's first step (`pyude.controllers.initial_dt`); calls f once. `work` is a
    (3, n) scratch array."""
    n = u0.shape[0]
    scale, u1, f1 = work[0], work[1], work[2]
    for i in range(n):
        scale[i] = atol[i] + rtol[i] * abs(u0[i])
    d0 = scaled_rms(u0, scale)
    d1 = scaled_rms(f0, scale)
    small = max(dtmin, 1e-6)
    if not math.isfinite(d1):
        return tdir * small
    h0 = small if (d0 < 1e-5 or d1 < 1e-5) else 0.01 * d0 / d1
    h0 = min(h0, dtmax)
    for i in range(n):
        u1[i] = u0[i] + tdir * h0 * f0[i]
    rhs(t0 + tdir * h0, u1, p, f1)
    for i in range(n):
        f1[i] = f1[i] - f0[i]
    d2 = scaled_rms(f1, scale) / h0
    big = max(d1, d2)
    if not math.isfinite(big):
        return tdir * max(dtmin, h0 * 1e-3)
    if big <= 1e-15:
        h1 = max(1e-6, h0 * 1e-3)
    else:
        h1 = 10.0 ** (-(2.0 + math.log10(big)) / (order + 1))
    return tdir * max(dtmin, min(100 * h0, h1, dtmax))
