"""The integration loop as one numba kernel, a transcription of `pyude._loop.integrate` for
one trajectory: stops and tstops landed exactly, `saveat` by dense interpolation, dtmin,
dtmax, maxiters, non-finite trials retried then Unstable, failed implicit steps retried
then ConvergenceFailure, the PI and predictive controllers, Hairer's initial step, and the
automatic stiffness switch. Both backends take the same steps up to round-off.

The kernel is compiled once with an explicit signature (`SOLVE_SIG`) and cached by numba
with pyude's source; the model's functions arrive as first-class function values, so a new
model never recompiles it. One kernel switches on the step's family (explicit RK,
Rosenbrock, ESDIRK), and the steps arrive as function values too (`_steps`), each compiled
on the first solve of its family: one loop serves every family and the switch between two.

Inputs are packed into arrays (`CFG_*` indices) so that the one signature serves every
option; the outputs are described at `solve_one`.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, types

from . import _control as ctl
from . import _switch as sw
from ._erk import FLAG_FSAL, FLAG_ORDER, erk_dense_stages, erk_interpolate, hermite
from ._esdirk import ESDIRK_TAB, esdirk_workspace
from ._linalg import NF, NJACS, NSOLVE, NW, OK
from ._rosenbrock import ROSENBROCK_TAB, rosenbrock_workspace
from ._steps import ERK_STEP_FN, ESDIRK_STEP_FN, ROSENBROCK_STEP_FN
from ._store import room_1d, room_2d, room_3d
from ._types import CUBE, DFDT_FN, IVEC, JAC_FN, MAT, RHS_FN, VEC

# `pyude._loop`'s constants, the same values
MAX_NONFINITE_TRIALS = 10
FAILFACTOR = 2.0
MAX_CONSECUTIVE_FAILURES = 20
EPS = 2.220446049250313e-16

# cfg: the solve's options
CFG_T0, CFG_T1, CFG_DT, CFG_DTMIN, CFG_DTMAX, CFG_MAXITERS = 0, 1, 2, 3, 4, 5
CFG_ADAPTIVE, CFG_DENSE, CFG_SAVEAT, CFG_FAMILY, CFG_ORDER = 6, 7, 8, 9, 10
CFG_SIZE = 11
# families: CFG_FAMILY is the single method's, or the stiff method's under the switch
FAMILY_ERK, FAMILY_ROSENBROCK, FAMILY_ESDIRK = 0, 1, 2

# return codes (mapped to `ReturnCode` on the Python side)
RC_SUCCESS, RC_MAXITERS, RC_DTMIN, RC_DT_NO_CHANGE, RC_UNSTABLE, RC_CONVERGENCE = range(6)
# the integer outputs: the return code, then the work counters
OUT_RETCODE, OUT_NF, OUT_NJACS, OUT_NW, OUT_NSOLVE, OUT_NACCEPT, OUT_NREJECT = range(7)
OUT_NSAVED, OUT_NSTEPS = 7, 8
OUT_SIZE = 9
# the float outputs: where and how the solve ended (for the message)
INFO_T, INFO_DT, INFO_FAILURES = 0, 1, 2
INFO_SIZE = 3

SOLVE_RESULT = types.Tuple((VEC, MAT, IVEC, VEC, MAT, MAT, MAT, CUBE, IVEC))
SOLVE_SIG = SOLVE_RESULT(
    RHS_FN, JAC_FN, DFDT_FN, VEC, VEC,        # model: rhs, jac, dfdt, p, u0
    VEC, VEC, VEC, VEC, VEC, VEC, VEC,        # cfg, ctrl, switch, rtol, atol, stops, saveat
    MAT, VEC, VEC, VEC, MAT, MAT, VEC, IVEC,  # explicit RK: A, b, c, b_err, poly, xa, xc, flags
    ROSENBROCK_TAB, MAT, ESDIRK_TAB,          # Rosenbrock tableau and dense poly, ESDIRK
    ERK_STEP_FN, ROSENBROCK_STEP_FN, ESDIRK_STEP_FN,  # the steps (`_steps.steps_for`)
)


@njit(cache=True)
def snap(a, b):
    """How close two times must be to count as the same time (`pyude._loop._snap`)."""
    return 64 * EPS * max(abs(a), abs(b), 1e-300)


@njit(cache=True)
def _save(ts, us, count, t, u):
    ts = room_1d(ts, count)
    us = room_2d(us, count)
    ts[count] = t
    us[count] = u
    return ts, us, count + 1


@njit(cache=True)
def _stiff_interpolate(out, theta, dt, u0, u1, f0, f1, rpoly, stages, family):
    """Rosenbrock's own dense output (u0 + sum_i b_i(theta) U_i), else Hermite's."""
    if family == FAMILY_ROSENBROCK and rpoly.shape[0] > 0:
        rows, degree = rpoly.shape
        for j in range(out.shape[0]):
            out[j] = 0.0
        for i in range(rows):
            w = 0.0
            power = 1.0
            for k in range(degree):
                power *= theta
                w += rpoly[i, k] * power
            for j in range(out.shape[0]):
                out[j] += w * stages[i, j]
        for j in range(out.shape[0]):
            out[j] = u0[j] + out[j]
    else:
        hermite(out, theta, dt, u0, u1, f0, f1)


@njit(SOLVE_SIG, cache=True, nogil=True)
def solve_one(rhs, jac, dfdt, p, u0, cfg, ctrl, switch, rtol, atol, stops, saveat,
              eA, eb, ec, ee, epoly, exa, exc, eflags, rtab, rpoly, etab,
              erk_step, rosenbrock_step, esdirk_step):
    """Integrate one trajectory from cfg[CFG_T0] to cfg[CFG_T1].

    Returns (ts, us, out, info, steps, step_u, step_f, step_k, methods): the saved times
    and states (the first out[OUT_NSAVED] rows), the return code and counters (`OUT_*`),
    where the solve stopped (`INFO_*`), the family of every accepted step (the first
    out[OUT_NACCEPT] entries) and, for dense output, the accepted steps (the first
    out[OUT_NSTEPS] rows): steps[i] = (t0, dt), the states and derivatives at the step
    boundaries (step i runs from row i to row i + 1) and each step's stages.
    """
    n = u0.shape[0]
    t0, t1 = cfg[CFG_T0], cfg[CFG_T1]
    tdir = 1.0 if t1 >= t0 else -1.0
    adaptive = cfg[CFG_ADAPTIVE] != 0.0
    dense = cfg[CFG_DENSE] != 0.0
    has_saveat = cfg[CFG_SAVEAT] != 0.0
    dtmin, dtmax = cfg[CFG_DTMIN], cfg[CFG_DTMAX]
    maxiters = cfg[CFG_MAXITERS]
    switching = switch[sw.SW_ON] != 0.0
    stiff_family = int(cfg[CFG_FAMILY])
    is_stiff = stiff_family != FAMILY_ERK and (not switching or switch[sw.SW_STIFF_FIRST] != 0)
    erk_order = eflags[FLAG_ORDER]
    stiff_order = cfg[CFG_ORDER]
    s_erk = eA.shape[0]
    s_ros = rtab[0].shape[0]
    s_esd = etab[0].shape[0]
    width = max(s_erk, s_ros, s_esd)

    out = np.zeros(OUT_SIZE, dtype=np.int64)
    info = np.zeros(INFO_SIZE)
    counters = np.zeros(4, dtype=np.int64)
    u = u0.copy()
    f0 = np.empty(n)
    u1 = np.empty(n)
    f1 = np.empty(n)
    err = np.zeros(n)
    scratch = np.empty((3, n))
    K = np.empty((s_erk, n))
    KD = np.empty((s_erk + 1 + exc.shape[0], n))
    interp = np.empty(n)
    state = np.empty(ctl.STATE_SIZE)
    rJ, rdT, rkey, rW, rWinv, rpiv, rwork, rstages = rosenbrock_workspace(n, s_ros)
    eJ, eW, eWinv, epiv, estate, ework, estages = esdirk_workspace(n, s_esd)

    ts = np.empty(saveat.shape[0] if has_saveat else 16)
    us = np.empty((ts.shape[0], n))
    nsaved = 0
    cap = 16 if dense else 0
    steps = np.empty((cap, 2))
    step_u = np.empty((cap + 1 if dense else 0, n))
    step_f = np.empty((step_u.shape[0], n))
    step_k = np.zeros((cap, width, n))
    methods = np.zeros(16, dtype=np.int64)
    nsteps = 0

    rhs(t0, u, p, f0)
    counters[NF] += 1
    t = t0
    next_save = 0
    if has_saveat:
        while next_save < saveat.shape[0] and abs(saveat[next_save] - t) <= snap(t, t):
            ts, us, nsaved = _save(ts, us, nsaved, saveat[next_save], u)
            next_save += 1
    else:
        ts, us, nsaved = _save(ts, us, nsaved, t, u)
    if dense:
        step_u[0] = u
        step_f[0] = f0

    nstops = stops.shape[0]
    istop = 0
    if not math.isnan(cfg[CFG_DT]) or nstops == 0:
        dt = tdir * abs(0.0 if math.isnan(cfg[CFG_DT]) else cfg[CFG_DT])
    else:
        first_order = stiff_order if is_stiff else erk_order
        dt = ctl.initial_dt(rhs, p, t, u, f0, tdir, first_order, rtol, atol, dtmax, dtmin,
                            scratch)
        counters[NF] += 1
    ctl.controller_start(ctrl, state)
    iters = 0
    nonfinite = 0
    failures = 0
    naccept = 0
    nreject = 0
    verdicts = 0
    retcode = RC_SUCCESS
    dt_try = dt
    while istop < nstops:
        if iters >= maxiters:
            retcode = RC_MAXITERS
            break
        stop = stops[istop]
        landing = tdir * (t + dt - stop) >= -snap(t + dt, stop)
        dt_try = stop - t if landing else dt
        if abs(dt_try) < dtmin and not landing:
            retcode = RC_DTMIN
            break
        if t + dt_try == t:
            retcode = RC_DT_NO_CHANGE
            break
        iters += 1
        family = stiff_family if is_stiff else FAMILY_ERK
        order = stiff_order if is_stiff else erk_order
        status = OK
        f1_given = False
        if family == FAMILY_ERK:
            counters[NF] += erk_step(rhs, p, t, u, f0, dt_try, eA, eb, ec, ee, eflags, K, u1,
                                     err, scratch[0])
            if eflags[FLAG_FSAL] != 0:
                f1[:] = K[s_erk - 1]
                f1_given = True
        elif family == FAMILY_ROSENBROCK:
            status = rosenbrock_step(rhs, jac, dfdt, rtab, t, u, f0, dt_try, p, rJ, rdT, rkey,
                                     rW, rWinv, rpiv, rwork, rstages, u1, err, f1, counters)
            f1_given = rtab[8] != 0
        else:
            status = esdirk_step(rhs, jac, etab, t, u, f0, dt_try, p, rtol, atol, eJ, eW,
                                 eWinv, epiv, estate, ework, estages, u1, err, f1, counters)
            f1_given = etab[5] != 0
        if status != OK:
            nreject += 1
            failures += 1
            if not adaptive or failures >= MAX_CONSECUTIVE_FAILURES:
                retcode = RC_CONVERGENCE
                break
            dt = dt_try / FAILFACTOR
            continue
        failures = 0
        if adaptive:
            eest = ctl.error_norm(err, u, u1, rtol, atol, scratch[1])
        else:
            eest = 0.0 if ctl.all_finite(u1) else math.nan
        if not math.isfinite(eest):
            nonfinite += 1
            nreject += 1
            if not adaptive or nonfinite >= MAX_NONFINITE_TRIALS:
                retcode = RC_UNSTABLE
                break
            dt = dt_try * ctrl[ctl.CTRL_QMIN]
            continue
        if eest > 1.0:
            nreject += 1
            dt = dt_try / ctl.reject_factor(ctrl, state, eest, order)
            continue
        t_new = stop if landing else t + dt_try
        if not f1_given:
            last = landing and istop == nstops - 1
            if family == FAMILY_ROSENBROCK and not switching and not last:
                # `derivative_at`: the next step's Jacobian, taken now (as the torch
                # stepper does; the switch's own derivative_at only calls f)
                jac(t_new, u1, p, rJ)
                dfdt(t_new, u1, p, rdT)
                rkey[0], rkey[1] = 1.0, t_new
                counters[NJACS] += 1
            rhs(t_new, u1, p, f1)
            counters[NF] += 1
        stages = K if family == FAMILY_ERK else (
            rstages if family == FAMILY_ROSENBROCK else estages)
        if has_saveat:
            dense_ready = False
            while next_save < saveat.shape[0]:
                ts_i = saveat[next_save]
                if abs(ts_i - t_new) <= snap(ts_i, t_new):
                    ts, us, nsaved = _save(ts, us, nsaved, ts_i, u1)
                elif tdir * (ts_i - t_new) < 0:
                    theta = (ts_i - t) / dt_try
                    if family != FAMILY_ERK:
                        _stiff_interpolate(interp, theta, dt_try, u, u1, f0, f1, rpoly,
                                           stages, family)
                    else:
                        if not dense_ready:
                            counters[NF] += erk_dense_stages(rhs, p, t, dt_try, u, f1, K,
                                                             eflags, exa, exc, KD)
                            dense_ready = True
                        erk_interpolate(interp, theta, dt_try, u, u1, f0, f1, epoly, KD)
                    ts, us, nsaved = _save(ts, us, nsaved, ts_i, interp)
                else:
                    break
                next_save += 1
        else:
            ts, us, nsaved = _save(ts, us, nsaved, t_new, u1)
        methods = room_1d(methods, naccept)
        methods[naccept] = family
        if dense:
            steps = room_2d(steps, nsteps)
            step_k = room_3d(step_k, nsteps)
            step_u = room_2d(step_u, nsteps + 1)
            step_f = room_2d(step_f, nsteps + 1)
            steps[nsteps, 0] = t
            steps[nsteps, 1] = dt_try
            step_k[nsteps, :stages.shape[0]] = stages
            step_u[nsteps + 1] = u1
            step_f[nsteps + 1] = f1
            nsteps += 1
        if adaptive:
            q = ctl.accept_factor(ctrl, state, eest, dt_try, order)
            if switching:
                if is_stiff:
                    eigen = sw.jacobian_eigen(rJ if stiff_family == FAMILY_ROSENBROCK else eJ)
                else:
                    eigen = sw.explicit_eigen(u, dt_try, eA, K)
                is_stiff, verdicts, factor = sw.switch_verdict(switch, eigen, dt_try,
                                                               is_stiff, verdicts)
                q /= factor
            dt = tdir * min(abs(dt_try / q), dtmax)
        naccept += 1
        t = t_new
        u[:] = u1
        f0[:] = f1
        if landing:
            istop += 1
    out[OUT_RETCODE] = retcode
    out[OUT_NF] = counters[NF]
    out[OUT_NJACS] = counters[NJACS]
    out[OUT_NW] = counters[NW]
    out[OUT_NSOLVE] = counters[NSOLVE]
    out[OUT_NACCEPT] = naccept
    out[OUT_NREJECT] = nreject
    out[OUT_NSAVED] = nsaved
    out[OUT_NSTEPS] = nsteps
    info[INFO_T] = t
    info[INFO_DT] = dt_try
    info[INFO_FAILURES] = failures
    return ts, us, out, info, steps, step_u, step_f, step_k, methods
