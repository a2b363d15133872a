"""The numba Rosenbrock and ESDIRK step kernels against the torch steppers.

The torch steps run on their host path (a CPU float64 state nothing differentiates), with
the Jacobian by reverse-mode autodiff; the kernels get hand-written models and analytic
Jacobians as function values of the fixed signatures, through entry points compiled with
those signatures (as the loop kernel compiles them), so no model recompiles a kernel.
"""

import dataclasses
import math

import numpy as np
import pytest
import torch
from helpers import ESDIRK, ROSENBROCK, STIFF, ids
from numba import njit

import pyude
from pyude import problems as P
from pyude._model import RHS
from pyude.backends.numba import _esdirk, _linalg, _rosenbrock
from pyude.backends.numba._types import JAC_SIG, RHS_SIG
from pyude.solvers import _linear, _newton, _sdirk
from pyude.solvers._rosenbrock import RosenbrockTableau

RTOL = 1e-12


# The entry points are not cached: numba keys a cached function by its own file alone, so a
# cached entry would keep running an older kernel after the kernel's module changes. The
# kernels they call are compiled (and cached, keyed by their own files) through their own
# dispatchers.
@njit(_rosenbrock.ROSENBROCK_STEP_SIG)
def _rosenbrock_entry(f, jac, dfdt, tab, t, u, f0, dt, p, J, dT, jkey, W, Winv, piv, work,
                      stages, u1, err, f1, counters):
    return _rosenbrock.rosenbrock_step(f, jac, dfdt, tab, t, u, f0, dt, p, J, dT, jkey, W,
                                       Winv, piv, work, stages, u1, err, f1, counters)


@njit(_esdirk.ESDIRK_STEP_SIG)
def _esdirk_entry(f, jac, tab, t, u, f0, dt, p, rtol, atol, J, W, Winv, piv, state, work,
                  stages, u1, err, f1, counters):
    return _esdirk.esdirk_step(f, jac, tab, t, u, f0, dt, p, rtol, atol, J, W, Winv, piv,
                               state, work, stages, u1, err, f1, counters)


# --- models: numba f, J, df/dt, and the same model for torch -------------------------------

@njit(RHS_SIG, cache=True)
def _rober(t, u, p, out):
    out[0] = -p[0] * u[0] + p[2] * u[1] * u[2]
    out[1] = p[0] * u[0] - p[1] * u[1] ** 2 - p[2] * u[1] * u[2]
    out[2] = p[1] * u[1] ** 2


@njit(JAC_SIG, cache=True)
def _rober_jac(t, u, p, J):
    J[0, 0], J[0, 1], J[0, 2] = -p[0], p[2] * u[2], p[2] * u[1]
    J[1, 0], J[1, 1], J[1, 2] = p[0], -2.0 * p[1] * u[1] - p[2] * u[2], -p[2] * u[1]
    J[2, 0], J[2, 1], J[2, 2] = 0.0, 2.0 * p[1] * u[1], 0.0


@njit(RHS_SIG, cache=True)
def _vdpol(t, u, p, out):
    out[0] = u[1]
    out[1] = p[0] * (1.0 - u[0] ** 2) * u[1] - u[0]


@njit(JAC_SIG, cache=True)
def _vdpol_jac(t, u, p, J):
    J[0, 0], J[0, 1] = 0.0, 1.0
    J[1, 0], J[1, 1] = -2.0 * p[0] * u[0] * u[1] - 1.0, p[0] * (1.0 - u[0] ** 2)


@njit(RHS_SIG, cache=True)
def _lotka(t, u, p, out):
    out[0] = p[0] * u[0] - p[1] * u[0] * u[1]
    out[1] = -p[2] * u[1] + p[3] * u[0] * u[1]


@njit(JAC_SIG, cache=True)
def _lotka_jac(t, u, p, J):
    J[0, 0], J[0, 1] = p[0] - p[1] * u[1], -p[1] * u[0]
    J[1, 0], J[1, 1] = p[3] * u[1], -p[2] + p[3] * u[0]


@njit(RHS_SIG, cache=True)
def _forced(t, u, p, out):
    out[0] = p[0] * u[0] + p[1] * u[1] + math.cos(t)
    out[1] = p[2] * u[0] + p[3] * u[1]


@njit(JAC_SIG, cache=True)
def _forced_jac(t, u, p, J):
    J[0, 0], J[0, 1], J[1, 0], J[1, 1] = p[0], p[1], p[2], p[3]


@njit(RHS_SIG, cache=True)
def _forced_dfdt(t, u, p, out):
    out[0] = -math.sin(t)
    out[1] = 0.0


@njit(RHS_SIG, cache=True)
def _matrix(t, u, p, out):
    """u' = M u with M (n x n) flattened row by row into p."""
    n = u.shape[0]
    for i in range(n):
        acc = 0.0
        for j in range(n):
            acc += p[i * n + j] * u[j]
        out[i] = acc


@njit(JAC_SIG, cache=True)
def _matrix_jac(t, u, p, J):
    n = u.shape[0]
    for i in range(n):
        for j in range(n):
            J[i, j] = p[i * n + j]


@njit(RHS_SIG, cache=True)
def _no_time(t, u, p, out):
    out[:] = 0.0


def _forced_torch(u, p, t):
    x, y = u
    t = torch.as_tensor(t, dtype=x.dtype)
    return [p.a * x + p.b * y + torch.cos(t), p.c * x + p.d * y]


def _matrix_torch(u, p, t):
    return p.M @ u


def _stiff_matrix(n=20, seed=0):
    """A non-normal matrix with eigenvalues from -1 to -1e4: stiff, and above SMALL_N so the
    kernels solve with LU factors where the torch host step forms W^-1."""
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return Q @ (np.diag(-np.logspace(0, 4, n)) + np.triu(rng.standard_normal((n, n)), 1)) @ Q.T


_M = _stiff_matrix()


class Model:
    def __init__(self, f, jac, dfdt, torch_f, params, u0, dt):
        self.f, self.jac, self.dfdt, self.torch_f = f, jac, dfdt, torch_f
        self.p_torch, self.u0, self.dt = params, np.array(u0, dtype=np.float64), dt
        self.p = np.ascontiguousarray(np.concatenate(
            [np.ravel(np.asarray(v, dtype=np.float64)) for v in params.values()]))

    def rhs(self):
        prob = pyude.ODEProblem(self.torch_f, self.u0.tolist(), (0.0, 1.0),
                                {k: torch.as_tensor(v, dtype=torch.float64)
                                 for k, v in self.p_torch.items()})
        rhs = RHS(prob.f, prob.p)
        rhs._needs_outside_grad = False        # (asked once per solve, with a call of f)
        return rhs

    def f0(self, t, u):
        out = np.empty_like(u)
        self.f(t, u, self.p, out)
        return out


MODELS = {
    "rober": Model(_rober, _rober_jac, _no_time, P.rober, dict(k1=0.04, k2=3e7, k3=1e4),
                   [0.9, 2.18e-5, 0.1], 1e-2),
    "vdpol": Model(_vdpol, _vdpol_jac, _no_time, P.vdpol, dict(mu=1e3), [2.0, -0.66], 1e-2),
    "lotka": Model(_lotka, _lotka_jac, _no_time, P.lotka_volterra,
                   dict(alpha=1.5, beta=1.0, gamma=3.0, delta=1.0), [1.0, 1.0], 0.1),
    "forced": Model(_forced, _forced_jac, _forced_dfdt, _forced_torch,
                    dict(a=-2.0, b=1.0, c=1.0, d=-1e3), [1.0, 0.5], 0.05),
    "matrix20": Model(_matrix, _matrix_jac, _no_time, _matrix_torch, dict(M=_M),
                      np.linspace(1.0, 2.0, 20), 1e-2),
}


# --- one step of either family, numba and torch ------------------------------------------

class NumbaStepper:
    """A kernel's arrays for one solve of `model` by `solver`, and its step."""

    def __init__(self, solver, model, rtol=1e-6, atol=1e-9):
        self.model, n = model, model.u0.shape[0]
        self.rosenbrock = isinstance(solver, pyude.solvers.AbstractRosenbrock)
        if self.rosenbrock:
            self.tab = _rosenbrock.rosenbrock_arrays(solver)
            self.ws = _rosenbrock.rosenbrock_workspace(n, len(self.tab[4]))
        else:
            self.tab = _esdirk.esdirk_arrays(solver)
            self.ws = _esdirk.esdirk_workspace(n, len(self.tab[1]))
            self.tols = (np.full(n, rtol), np.full(n, atol))
        self.u1, self.err, self.f1 = np.zeros(n), np.zeros(n), np.full(n, np.nan)
        self.counters = np.zeros(4, dtype=np.int64)

    def step(self, t, u, f0, dt):
        m, out = self.model, (self.u1, self.err, self.f1, self.counters)
        if self.rosenbrock:
            return _rosenbrock_entry(m.f, m.jac, m.dfdt, self.tab, t, u, f0, dt, m.p, *self.ws,
                                     *out)
        return _esdirk_entry(m.f, m.jac, self.tab, t, u, f0, dt, m.p, *self.tols, *self.ws,
                             *out)

    @property
    def stages(self):
        return self.ws[-1]


def _counts(cache, rhs):
    return dict(nf=rhs.nf, njacs=cache.njacs, nw=cache.nw, nsolve=cache.nsolve)


def _numba_counts(counters):
    return dict(zip(("nf", "njacs", "nw", "nsolve"), counters.tolist()))


def _close(actual, expected, what, size=None):
    """Equal to round-off: 1e-12 relative, component by component, with 1e-12 of `size` (the
    largest of the quantities the result is summed from; the array's own by default) as the
    floor for components that cancel to near zero: an error estimate, or a stage that is one,
    is a small difference of stages (Rodas5P's err is its last stage, ~1e-7 of the others)."""
    expected = np.asarray(expected)
    size = np.abs(expected).max() if size is None else size
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=RTOL * max(size, 1e-300),
                               err_msg=what)


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("entry", STIFF, ids=ids(STIFF))
def test_one_step_equals_the_torch_step(entry, name):
    model, solver = MODELS[name], entry.solver
    rhs, cache = model.rhs(), solver.init_cache(1e-6, 1e-9)
    u = torch.tensor(model.u0, dtype=torch.float64)
    t = 0.3
    ref = solver.step(rhs, t, u, rhs(t, u), model.dt, cache)
    stepper = NumbaStepper(solver, model)
    status = stepper.step(t, model.u0, model.f0(t, model.u0), model.dt)
    assert ref.ok and status == _linalg.OK
    _close(stepper.u1, ref.u1.numpy(), "u1")
    size = max(float(stage.abs().max()) for stage in ref.stages)
    _close(stepper.err, ref.err.numpy(), "err", size)
    assert len(ref.stages) == stepper.stages.shape[0]
    for i, stage in enumerate(ref.stages):
        _close(stepper.stages[i], stage.numpy(), f"stage {i}", size)
    if ref.f1 is not None:
        _close(stepper.f1, ref.f1.numpy(), "f1")
    torch_counts = _counts(cache, rhs)
    # Torch takes its Jacobian with one call of f (reverse mode) and counts it in nf; the
    # analytic Jacobian costs none. Both count the first f(t, u) call outside the kernel.
    torch_counts["nf"] -= 1 + torch_counts["njacs"]
    assert _numba_counts(stepper.counters) == torch_counts


@pytest.mark.parametrize("entry", ROSENBROCK, ids=ids(ROSENBROCK))
def test_the_stages_give_the_torch_dense_output(entry):
    """The kernel's stages in a StepRecord interpolate as the torch step's own do (the
    ESDIRK methods interpolate by Hermite from u and f alone)."""
    from pyude.solvers._dense import StepRecord

    model, solver = MODELS["vdpol"], entry.solver
    rhs, t, dt = model.rhs(), 0.3, model.dt
    u = torch.tensor(model.u0, dtype=torch.float64)
    f0 = rhs(t, u)
    ref = solver.step(rhs, t, u, f0, dt, solver.init_cache())
    stepper = NumbaStepper(solver, model)
    stepper.step(t, model.u0, model.f0(t, model.u0), dt)
    theirs = StepRecord(t0=t, dt=dt, u0=u, u1=ref.u1, f0=f0, f1=None, stages=ref.stages,
                        rhs=rhs)
    mine = StepRecord(t0=t, dt=dt, u0=u, u1=torch.from_numpy(stepper.u1.copy()), f0=f0,
                      f1=None, stages=list(torch.from_numpy(stepper.stages.copy())), rhs=rhs)
    for theta in (0.25, 0.5, 0.9):
        _close(solver.interpolate(mine, theta).numpy(),
               solver.interpolate(theirs, theta).numpy(), f"theta {theta}")


@dataclasses.dataclass(frozen=True, repr=False)
class _RepeatedStage(pyude.solvers.AbstractRosenbrock):
    """Not a method of any order: a tableau whose second stage has the first one's time and
    state, so it reuses f0 (`new_f` False, which no registered method has)."""

    autodiff: bool = True
    tableau = RosenbrockTableau(
        A=[[0, 0, 0], [0, 0, 0], [0.5, 0, 0]], C=[[0, 0, 0], [1.0, 0, 0], [0.2, 0.3, 0]],
        gamma=0.4, c=[0, 0, 0.2], d=[0.4, 0.1, -0.2], b=[0.5, 0.3, 0.2],
        b_err=[0.1, -0.2, 0.1])
    order = 1
    embedded_order = 1


@pytest.mark.parametrize("name", ["vdpol", "forced"])
def test_a_stage_that_reuses_the_previous_f(name):
    solver, model = _RepeatedStage(), MODELS[name]
    assert solver.tableau.new_f == (True, False, True)
    rhs, cache = model.rhs(), solver.init_cache()
    u = torch.tensor(model.u0, dtype=torch.float64)
    ref = solver.step(rhs, 0.3, u, rhs(0.3, u), model.dt, cache)
    stepper = NumbaStepper(solver, model)
    assert stepper.step(0.3, model.u0, model.f0(0.3, model.u0), model.dt) == _linalg.OK
    size = max(float(stage.abs().max()) for stage in ref.stages)
    for i, stage in enumerate(ref.stages):
        _close(stepper.stages[i], stage.numpy(), f"stage {i}", size)
    _close(stepper.u1, ref.u1.numpy(), "u1")
    assert stepper.counters[_linalg.NF] == 1 == rhs.nf - 1 - cache.njacs


# --- failures ------------------------------------------------------------------------------

@njit(RHS_SIG, cache=True)
def _growth(t, u, p, out):
    for i in range(u.shape[0]):
        out[i] = p[0] * u[i]


@njit(JAC_SIG, cache=True)
def _growth_jac(t, u, p, J):
    J[:, :] = 0.0
    for i in range(u.shape[0]):
        J[i, i] = p[0]


def _singular_growth(solver):
    """u' = lam u with lam making W exactly zero at the returned dt: I / (dt gamma) - J for
    a Rosenbrock method, I - gamma dt J for an ESDIRK (a dt where (gamma dt)(1 / (gamma dt))
    rounds to 1)."""
    gamma = solver.tableau.gamma
    if isinstance(solver, pyude.solvers.AbstractRosenbrock):
        dt = 0.1
    else:
        dt = next(dt for dt in np.linspace(0.1, 0.2, 101)
                  if 1.0 - (dt * gamma) * (1.0 / (dt * gamma)) == 0.0)
    return Model(_growth, _growth_jac, _no_time, P.exponential_growth,
                 dict(lam=1.0 / (dt * gamma)), [0.5, 0.25], dt)


def _one_step_both(solver, model, t, u0, dt, rtol=1e-6, atol=1e-9):
    rhs, cache = model.rhs(), solver.init_cache(rtol, atol)
    u = torch.tensor(u0, dtype=torch.float64)
    ref = solver.step(rhs, t, u, rhs(t, u), dt, cache)
    stepper = NumbaStepper(solver, model, rtol, atol)
    status = stepper.step(t, np.array(u0), model.f0(t, np.array(u0)), dt)
    torch_counts = _counts(cache, rhs)
    torch_counts["nf"] -= 1 + torch_counts["njacs"]
    return ref, status, torch_counts, _numba_counts(stepper.counters)


@pytest.mark.parametrize("entry", STIFF, ids=ids(STIFF))
def test_singular_w_fails_the_step(entry):
    model = _singular_growth(entry.solver)
    ref, status, torch_counts, counts = _one_step_both(entry.solver, model, 0.0, model.u0,
                                                       model.dt)
    assert not ref.ok and status == _linalg.SINGULAR_W
    assert counts == torch_counts == dict(nf=0, njacs=1, nw=1, nsolve=0)


@pytest.mark.parametrize("entry", ESDIRK, ids=ids(ESDIRK))
def test_singular_w_with_a_kept_jacobian_is_retried_with_a_new_one(entry):
    """A step from a new point with the previous point's J: W is singular, so J is taken
    again and the step tried once more (singular again: u' = lam u has one J), then
    returned as failed; the same work as the torch stepper's."""
    solver, model = entry.solver, _singular_growth(entry.solver)
    rhs, cache = model.rhs(), solver.init_cache(1e-6, 1e-9)
    stepper = NumbaStepper(solver, model)
    u = torch.tensor(model.u0, dtype=torch.float64)
    first = solver.step(rhs, 0.0, u, rhs(0.0, u), model.dt / 2, cache)
    assert first.ok
    assert stepper.step(0.0, model.u0, model.f0(0.0, model.u0), model.dt / 2) == _linalg.OK
    t, u1 = model.dt / 2, stepper.u1.copy()
    second = solver.step(rhs, t, first.u1, rhs(t, first.u1), model.dt, cache)
    status = stepper.step(t, u1, model.f0(t, u1), model.dt)
    assert not second.ok and status == _linalg.SINGULAR_W
    torch_counts = _counts(cache, rhs)
    torch_counts["nf"] -= 2 + torch_counts["njacs"]
    assert _numba_counts(stepper.counters) == torch_counts
    assert torch_counts["njacs"] == 2 and torch_counts["nw"] == 3


@pytest.mark.parametrize("entry", ESDIRK, ids=ids(ESDIRK))
def test_newton_failure_with_a_fresh_jacobian_fails_the_step(entry):
    """A huge step on ROBER from its start: Newton diverges with the Jacobian just taken, and
    the step is returned as failed for the loop to halve dt, after the same work."""
    model = MODELS["rober"]
    ref, status, torch_counts, counts = _one_step_both(entry.solver, model, 0.0,
                                                       [1.0, 0.0, 0.0], 1e3)
    assert not ref.ok and status == _esdirk.NEWTON_FAILED
    assert counts == torch_counts
    assert counts["njacs"] == 1 and counts["nw"] == 1 and counts["nf"] >= 2


@pytest.mark.parametrize("entry", STIFF, ids=ids(STIFF))
def test_tableau_arrays_have_the_types_of_the_step_signatures(entry):
    """What `*_arrays` gives is what ROSENBROCK_STEP_SIG / ESDIRK_STEP_SIG declare, so a
    kernel compiled with those signatures takes every method's tableau."""
    import numba

    if isinstance(entry.solver, pyude.solvers.AbstractRosenbrock):
        tab, expected = _rosenbrock.rosenbrock_arrays(entry.solver), _rosenbrock.ROSENBROCK_TAB
        assert _rosenbrock.ROSENBROCK_STEP_SIG.args[3] == expected
    else:
        tab, expected = _esdirk.esdirk_arrays(entry.solver), _esdirk.ESDIRK_TAB
        assert _esdirk.ESDIRK_STEP_SIG.args[2] == expected
    assert numba.typeof(tab) == expected


def test_constants_are_the_torch_steppers():
    assert (_esdirk.KAPPA, _esdirk.MAX_ITERS) == (_newton.KAPPA, _newton.MAX_ITERS)
    assert _esdirk.SLOW_ITERATIONS == _sdirk.SLOW_ITERATIONS
    assert _esdirk.EPS == np.finfo(np.float64).eps
    assert _linalg.SMALL_N == _linear.SMALL_N


# --- a sequence of steps: Jacobian reuse, refactorisation, retries -------------------------

def _eest(err, u0, u1, rtol, atol):
    err, u0, u1 = (np.asarray(x) for x in (err, u0, u1))
    scale = atol + rtol * np.maximum(np.abs(u0), np.abs(u1))
    return float(np.sqrt(np.mean((err / scale) ** 2)))


def _drive(step, next_f0, t, u, f0, dt, order, trials, rtol, atol, adaptive=True):
    """A small loop: a failed step halves dt, a rejected one shrinks it, an accepted one
    moves on (with fixed steps every completed step is accepted and dt stays); returns what
    happened at each trial and the final state.
    `step(t, u, f0, dt)` gives (ok, u1, err, f1 or None). A rejected step is retried with
    the same u object, as the loop does (the torch steppers know their start by it)."""
    log = []
    for _ in range(trials):
        if f0 is None:             # asked only where a step follows, as the loop does
            f0 = next_f0(t, u)
        ok, u1, err, f1 = step(t, u, f0, dt)
        if not ok:
            log.append(("failed", t, dt, 0.0))
            dt /= 2
            continue
        eest = _eest(err, u, u1, rtol, atol)
        q = min(5.0, max(0.2, 0.9 * max(eest, 1e-10) ** (-1.0 / (order + 1))))
        q, accept = (q, eest <= 1.0) if adaptive else (1.0, True)
        log.append(("accepted" if accept else "rejected", t, dt, eest))
        if accept:
            t, u, f0 = t + dt, u1, f1
        dt *= q
    return log, np.asarray(u)


def _drive_torch(solver, model, u0, dt, trials, rtol, atol, adaptive):
    rhs, cache = model.rhs(), solver.init_cache(rtol, atol)

    def step(t, u, f0, dt):
        r = solver.step(rhs, t, u, f0, dt, cache)
        return r.ok, r.u1, r.err, r.f1

    def next_f0(t, u):             # as the loop asks: Rosenbrock takes J here, with f
        return solver.derivative_at(rhs, t, u, cache)

    u0 = torch.tensor(u0, dtype=torch.float64)
    log, u = _drive(step, next_f0, 0.0, u0, rhs(0.0, u0), dt, solver.order, trials, rtol,
                    atol, adaptive)
    counts = _counts(cache, rhs)
    counts["nf"] -= 1 + counts["njacs"]
    return log, u, counts


def _drive_numba(solver, model, u0, dt, trials, rtol, atol, adaptive):
    stepper = NumbaStepper(solver, model, rtol, atol)
    fsal = stepper.tab[8] if stepper.rosenbrock else stepper.tab[5]

    def step(t, u, f0, dt):
        ok = stepper.step(t, u, f0, dt) == _linalg.OK
        return ok, stepper.u1.copy(), stepper.err.copy(), stepper.f1.copy() if fsal else None

    u0 = np.array(u0)
    log, u = _drive(step, model.f0, 0.0, u0, model.f0(0.0, u0), dt, solver.order, trials,
                    rtol, atol, adaptive)
    return log, u, _numba_counts(stepper.counters)


def _sequence_cases():
    return [pytest.param(e, adaptive, id=f"{e.id}-{'adaptive' if adaptive else 'fixed'}")
            for e in STIFF for adaptive in (True, False)]


@pytest.mark.parametrize("entry,adaptive", _sequence_cases())
def test_a_sequence_of_steps_takes_the_torch_steppers_decisions(entry, adaptive):
    """Van der Pol (mu = 1e3) through its first fast transient, adaptive from a step far too
    large or with fixed steps (where an ESDIRK keeps W while J stays): the same accepted,
    rejected and failed trials at the same times and step sizes, the same Jacobians,
    factorisations, solves and calls of f, and the same state at the end. The scaled error
    estimates agree to 1e-8 relative or 1e-11 absolute: an estimate is a difference of
    stages (Rodas5P's is its last stage, some 1e-7 of the others), so its round-off is that
    of the stages, not of itself."""
    model, rtol, atol = MODELS["vdpol"], 1e-5, 1e-7
    args = (entry.solver, model, [2.0, 0.0], 0.5 if adaptive else 2e-3, 60, rtol, atol,
            adaptive)
    ref_log, ref_u, ref_counts = _drive_torch(*args)
    log, u, counts = _drive_numba(*args)
    assert [x[0] for x in log] == [x[0] for x in ref_log]
    np.testing.assert_allclose([x[1:3] for x in log], [x[1:3] for x in ref_log], rtol=1e-9)
    np.testing.assert_allclose([x[3] for x in log], [x[3] for x in ref_log], rtol=1e-8,
                               atol=1e-11)
    assert counts == ref_counts
    np.testing.assert_allclose(u, ref_u, rtol=1e-9)
    accepted = sum(x[0] == "accepted" for x in log)
    if isinstance(entry.solver, pyude.solvers.AbstractESDIRK):     # J is kept across steps
        assert counts["njacs"] < accepted


# --- linear algebra and compilation --------------------------------------------------------

@pytest.mark.parametrize("n", [1, 3, 16, 17, 40])
def test_factorise_and_apply_solve_with_partial_pivoting(n):
    """W^-1 b to round-off (relative to cond(W)), through the inverse up to SMALL_N unknowns
    and the LU factors above; a zero leading entry needs the pivoting."""
    rng = np.random.default_rng(n)
    W = rng.standard_normal((n, n)) + n * np.eye(n)
    W[0, 0] = 0.0 if n > 1 else W[0, 0]
    b = rng.standard_normal(n)
    expected = np.linalg.solve(W, b)
    LU, piv, Winv, x = W.copy(), np.zeros(n, dtype=np.int64), np.zeros((n, n)), np.zeros(n)
    assert _linalg.factorise(LU, piv, Winv)
    _linalg.apply_inverse(LU, piv, Winv, b, x)
    tol = 10 * np.linalg.cond(W) * np.finfo(float).eps
    np.testing.assert_allclose(x, expected, rtol=0, atol=tol * np.abs(expected).max())
    if n <= _linalg.SMALL_N:
        np.testing.assert_allclose(Winv, np.linalg.inv(W), rtol=0, atol=tol * np.abs(
            np.linalg.inv(W)).max())


@pytest.mark.parametrize("n", [3, 20])
@pytest.mark.parametrize("bad", ["zero column", "dependent rows", "nan"])
def test_factorise_refuses_singular_and_non_finite_matrices(n, bad):
    """An exactly zero pivot, or factors that are not finite (`factorise_on_host` refuses an
    inverse that is not finite; LAPACK's getrf passes a NaN pivot through)."""
    W = np.random.default_rng(0).standard_normal((n, n))
    if bad == "zero column":
        W[:, 1] = 0.0
    elif bad == "dependent rows":       # equal rows stay equal under the same row
        W[2] = W[0]                         # operations, and cancel exactly
    else:
        W[1, 1] = np.nan
    assert not _linalg.factorise(W, np.zeros(n, dtype=np.int64), np.zeros((n, n)))


def test_kernels_come_from_the_cache_for_a_new_model_in_a_new_process():
    """The kernels take the model as function values: a model defined in a new process
    reuses the compiled (cached) kernels and compiles only its own functions (and here the
    uncached entry points)."""
    import subprocess
    import sys
    from pathlib import Path

    script = """
import numpy as np, pyude
from numba import njit
import test_numba_stiff_steps as T
from pyude.backends.numba._types import JAC_SIG, RHS_SIG

@njit(RHS_SIG)
def decay(t, u, p, out):
    out[0] = -p[0] * u[0]

@njit(JAC_SIG)
def decay_jac(t, u, p, J):
    J[0, 0] = -p[0]

model = T.Model(decay, decay_jac, T._no_time, None, dict(k=5.0), [1.0], 0.1)
for solver in (pyude.Rodas5P(), pyude.KenCarp4()):
    stepper = T.NumbaStepper(solver, model)
    assert stepper.step(0.0, model.u0, model.f0(0.0, model.u0), 0.1) == 0
    assert abs(stepper.u1[0] - np.exp(-0.5)) < 1e-3, stepper.u1
from pyude.backends.numba import _esdirk, _rosenbrock
for kernel in (_rosenbrock.rosenbrock_step, _esdirk.esdirk_step):
    assert not kernel.stats.cache_misses and sum(kernel.stats.cache_hits.values()) == 1
print("ok")
"""
    tests = Path(__file__).parent
    env = dict(__import__("os").environ, PYTHONPATH=f"{tests.parent}:{tests}")
    run = subprocess.run([sys.executable, "-c", script], cwd=tests, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr[-2000:]
