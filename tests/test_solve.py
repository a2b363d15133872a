"""The solve loop: saving, dense output, batches, dtypes, reverse time, gradients, failures."""

import math

import numpy as np
import pytest
import torch

import pyude
from helpers import ADAPTIVE, FIXED, SOLVERS, ids
from problems import LOTKA_VOLTERRA_T10, oscillator_exact, oscillator_problem

LV = pyude.problems.lotka_volterra


def _kwargs(entry, **adaptive_kwargs):
    return adaptive_kwargs if entry.solver.adaptive else {"dt": 2.0**-entry.convergence_k[-1]}


@pytest.mark.parametrize("entry", SOLVERS, ids=ids(SOLVERS))
def test_saveat_gives_exactly_the_requested_times(entry):
    prob = oscillator_problem(tspan=(0.0, 3.0))
    times = [0.0, 0.25, 1.0 / 3.0, 1.7, 3.0]
    sol = pyude.solve(prob, entry.solver, saveat=times, **_kwargs(entry, rtol=1e-8, atol=1e-8))
    assert sol.t.tolist() == times
    exact = np.stack([oscillator_exact(t) for t in times])
    tol = 1e-6 if entry.order >= 3 else 1e-2
    np.testing.assert_allclose(sol.u.numpy(), exact, atol=tol)


def test_saveat_number_saves_every_interval_including_both_ends():
    sol = pyude.solve(oscillator_problem(tspan=(0.0, 1.0)), pyude.Tsit5(), saveat=0.1)
    np.testing.assert_allclose(sol.t.numpy(), np.linspace(0.0, 1.0, 11), atol=1e-15)
    assert sol.t[-1].item() == 1.0


def test_saveat_does_not_force_steps():
    prob = pyude.problems.lotka_volterra_problem()
    free = pyude.solve(prob, pyude.Tsit5())
    saved = pyude.solve(prob, pyude.Tsit5(), saveat=np.linspace(0, 10, 1001))
    assert saved.stats.naccept == free.stats.naccept
    np.testing.assert_allclose(saved.u.numpy(), free(saved.t).numpy(), atol=1e-13)


@pytest.mark.parametrize("entry", SOLVERS, ids=ids(SOLVERS))
def test_dense_solution_reproduces_saved_steps(entry):
    sol = pyude.solve(oscillator_problem(tspan=(0.0, 2.0)), entry.solver, **_kwargs(entry))
    assert torch.equal(sol(sol.t), sol.u)


def test_tstops_are_stepped_onto_exactly():
    stops = [0.123456789, 2.5, 7.77]
    sol = pyude.solve(pyude.problems.lotka_volterra_problem(), pyude.Tsit5(), tstops=stops)
    for s in stops:
        assert s in sol.t.tolist()


def test_fixed_steps_land_on_t1_and_tstops():
    sol = pyude.solve(oscillator_problem(tspan=(0.0, 1.0)), pyude.RK4(), dt=0.3, tstops=[0.5])
    np.testing.assert_allclose(sol.t.numpy(), [0.0, 0.3, 0.5, 0.8, 1.0], atol=1e-15)


@pytest.mark.parametrize("entry", SOLVERS, ids=ids(SOLVERS))
def test_batch_equals_single_solves(entry):
    u0 = torch.tensor([[1.0, 1.0], [2.0, 0.5], [0.5, 3.0]], dtype=torch.float64)
    p = dict(alpha=torch.tensor([1.5, 1.2, 1.0], dtype=torch.float64), beta=1.0,
             gamma=3.0, delta=1.0)
    kw = _kwargs(entry, rtol=1e-9, atol=1e-9)
    batch = pyude.solve(pyude.ODEProblem(LV, u0, (0, 2), p), entry.solver, saveat=[1.0, 2.0],
                        **kw)
    assert batch.u.shape == (2, 3, 2)
    for i in range(3):
        pi = dict(p, alpha=p["alpha"][i])
        single = pyude.solve(pyude.ODEProblem(LV, u0[i], (0, 2), pi), entry.solver,
                             saveat=[1.0, 2.0], **kw)
        # Shared steps differ from a single trajectory's own: agreement to the method's
        # accuracy at this tolerance; fixed steps agree to round-off.
        tol = (1e-6 if entry.order >= 3 else 1e-4) if entry.solver.adaptive else 1e-13
        np.testing.assert_allclose(batch.u[:, i].numpy(), single.u.numpy(), rtol=tol)


def test_batched_tensor_parameters_and_multiple_batch_axes():
    u0 = torch.ones(2, 3, 2, dtype=torch.float64)
    p = torch.tensor([1.5, 1.0, 3.0, 1.0], dtype=torch.float64).expand(2, 3, 4)

    def lv(u, p, t):
        a, b, c, d = p
        x, y = u
        return torch.stack([a * x - b * x * y, -c * y + d * x * y])

    sol = pyude.solve(pyude.ODEProblem(lv, u0, (0, 10), p), pyude.Tsit5(), rtol=1e-10,
                      atol=1e-10, saveat=[10.0])
    assert sol.u.shape == (1, 2, 3, 2)
    np.testing.assert_allclose(sol.u[-1].numpy(), np.broadcast_to(LOTKA_VOLTERRA_T10, (2, 3, 2)),
                               rtol=2e-9)


@pytest.mark.parametrize("entry", SOLVERS, ids=ids(SOLVERS))
def test_float32_follows_u0(entry):
    prob = oscillator_problem(tspan=(0.0, 2.0), u0=torch.tensor([1.0, 0.0]))
    sol = pyude.solve(prob, entry.solver, **_kwargs(entry, rtol=1e-5, atol=1e-6))
    assert sol.u.dtype == torch.float32 and sol.t.dtype == torch.float32
    tol = 1e-4 if entry.order >= 3 else 2e-2
    np.testing.assert_allclose(sol.u[-1].numpy(), oscillator_exact(2.0), atol=tol)


@pytest.mark.parametrize("entry", FIXED + ADAPTIVE, ids=ids(FIXED + ADAPTIVE))
def test_reverse_time_is_the_reflected_forward_solve(entry):
    def reflected(u, p, t):
        return [-d for d in LV(u, p, -t)]

    p = dict(alpha=1.5, beta=1.0, gamma=3.0, delta=1.0)
    kw = _kwargs(entry, rtol=1e-6, atol=1e-6)
    back = pyude.solve(pyude.ODEProblem(LV, [1.0, 1.0], (2.0, 0.0), p), entry.solver, **kw)
    fwd = pyude.solve(pyude.ODEProblem(reflected, [1.0, 1.0], (-2.0, 0.0), p), entry.solver,
                      **kw)
    np.testing.assert_array_equal(back.t.numpy(), -fwd.t.numpy())
    np.testing.assert_array_equal(back.u.numpy(), fwd.u.numpy())


def test_reverse_time_returns_to_the_start():
    prob = pyude.problems.lotka_volterra_problem()
    fwd = pyude.solve(prob, pyude.Vern7(), rtol=1e-11, atol=1e-11)
    back = pyude.solve(prob.remake(u0=fwd.u[-1], tspan=(10.0, 0.0)), pyude.Vern7(),
                       rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(back.u[-1].numpy(), [1.0, 1.0], rtol=1e-8)
    assert back.t[-1].item() == 0.0


def test_empty_time_span_returns_u0():
    sol = pyude.solve(pyude.problems.lotka_volterra_problem(tspan=(1.0, 1.0)), pyude.Tsit5())
    assert sol.retcode is pyude.ReturnCode.Success
    assert sol.t.tolist() == [1.0] and sol.u[0].tolist() == [1.0, 1.0]


def test_stats_count_work():
    sol = pyude.solve(pyude.problems.lotka_volterra_problem(), pyude.Tsit5())
    s = sol.stats
    # FSAL: f(u0), one probe for the initial step, then six new stages per trial step.
    assert s.nf == 2 + 6 * s.nsteps
    assert s.naccept == len(sol) - 1
    fixed = pyude.solve(pyude.problems.lotka_volterra_problem(), pyude.RK4(), dt=0.1)
    # Not FSAL: four stages per step; the last f(u1) starts the next step.
    assert fixed.stats.nf == 1 + 4 * 100 and fixed.stats.nreject == 0


def test_methods_get_ordinarydiffeqs_own_controller_gains():
    """DP5's PI gains are OrdinaryDiffEq's (0.17, 0.04), not the 0.7/p, 0.4/p of the rest;
    gains a user sets are kept."""
    ctrl = pyude.PIController()
    assert ctrl.for_solver(pyude.DP5()).betas(5) == (0.17, 0.04)
    assert ctrl.for_solver(pyude.Tsit5()).betas(5) == pytest.approx((0.14, 0.08))
    assert pyude.PIController(beta1=0.2, beta2=0.0).for_solver(pyude.DP5()).betas(5) \
        == (0.2, 0.0)


def test_predictive_controller_shrinks_ahead_of_a_growing_error():
    """Gustafsson's factor: errors 0.2 then 0.6 on equal steps predict a further rise, so the
    step shrinks by (0.6^2 / 0.2)^(1/p) / gamma rather than the standard 0.6^(1/p) / gamma."""
    ctrl, p = pyude.PredictiveController(), 5
    state = ctrl.start()
    assert ctrl.accept_factor(state, 0.2, 1.0, p) == pytest.approx(0.2 ** (1 / p) / 0.9)
    q = ctrl.accept_factor(state, 0.6, 1.0, p)
    assert q == pytest.approx((0.6**2 / 0.2) ** (1 / p) / 0.9)
    assert q > 0.6 ** (1 / p) / 0.9


def test_predictive_controller_rejections():
    """A rejection before any accepted step shrinks by 10, later ones by the standard factor;
    the step after a rejection does not grow."""
    ctrl, p = pyude.PredictiveController(), 5
    state = ctrl.start()
    assert ctrl.reject_factor(state, 3.0, p) == 10.0
    assert ctrl.accept_factor(state, 1e-6, 1.0, p) == 1.0          # would have grown 10000x
    ctrl.accept_factor(state, 0.5, 1.0, p)
    assert ctrl.reject_factor(state, 3.0, p) == pytest.approx(3.0 ** (1 / p) / 0.9)
    assert ctrl.accept_factor(state, 1e-3, 0.5, p) == 1.0


def test_pi_controller_remembers_the_last_accepted_error():
    ctrl, p = pyude.PIController(), 4
    state = ctrl.start()
    ctrl.accept_factor(state, 0.5, 1.0, p)
    beta1, beta2 = ctrl.betas(p)
    assert ctrl.accept_factor(state, 0.8, 1.0, p) == \
        pytest.approx(0.8**beta1 / 0.5**beta2 / 0.9)


def test_numpy_view():
    sol = pyude.solve(pyude.problems.lotka_volterra_problem(), pyude.Tsit5(), saveat=[0, 5])
    t, u = sol.numpy()
    assert isinstance(t, np.ndarray) and u.shape == (2, 2)


# --- gradients by direct backpropagation ------------------------------------------------

def _lv_loss(u0, p, solver, **kw):
    prob = pyude.ODEProblem(LV, u0, (0.0, 5.0), dict(zip(["alpha", "beta", "gamma", "delta"], p)))
    sol = pyude.solve(prob, solver, saveat=[1.0, 2.5, 5.0], **kw)
    return (sol.u**2).sum()


@pytest.mark.parametrize("solver,kw,tol", [
    (pyude.RK4(), dict(dt=0.01), 1e-7),
    (pyude.Tsit5(), dict(rtol=1e-12, atol=1e-12), 1e-5),
    (pyude.Vern7(), dict(rtol=1e-12, atol=1e-12), 1e-5),
], ids=["RK4", "Tsit5", "Vern7"])
def test_gradient_matches_central_differences(solver, kw, tol):
    u0 = torch.tensor([1.0, 1.0], dtype=torch.float64, requires_grad=True)
    p = torch.tensor([1.5, 1.0, 3.0, 1.0], dtype=torch.float64, requires_grad=True)
    _lv_loss(u0, list(p), solver, **kw).backward()
    grad = torch.cat([u0.grad, p.grad]).numpy()
    x0 = torch.cat([u0, p]).detach()
    h, fd = 1e-6, []
    for i in range(6):
        e = torch.zeros(6, dtype=torch.float64)
        e[i] = h
        plus, minus = x0 + e, x0 - e
        fd.append((_lv_loss(plus[:2], list(plus[2:]), solver, **kw)
                   - _lv_loss(minus[:2], list(minus[2:]), solver, **kw)).item() / (2 * h))
    np.testing.assert_allclose(grad, fd, rtol=tol)


def test_gradcheck_fixed_step():
    def loss(u0, k):
        prob = pyude.ODEProblem(lambda u, p, t: [-p[0] * u[0] * u[1], p[0] * u[0] - u[1]],
                                u0, (0.0, 1.0), k)
        return pyude.solve(prob, pyude.RK4(), dt=0.1).u

    u0 = torch.tensor([1.0, 0.5], dtype=torch.float64, requires_grad=True)
    k = torch.tensor([0.7], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(loss, (u0, k))


def test_unused_parameter_gets_zero_gradient():
    p = torch.tensor([1.5, 1.0, 3.0, 1.0, 7.0], dtype=torch.float64, requires_grad=True)

    def lv(u, p, t):
        x, y = u
        return [p[0] * x - p[1] * x * y, -p[2] * y + p[3] * x * y]

    sol = pyude.solve(pyude.ODEProblem(lv, [1.0, 1.0], (0, 1), p), pyude.Tsit5())
    sol.u[-1].sum().backward()
    assert p.grad[4].item() == 0.0 and p.grad[:4].abs().min() > 0


# --- failures end with a return code, never with NaNs or a hang --------------------------

def test_maxiters_raises_with_the_partial_solution():
    prob = pyude.problems.lotka_volterra_problem()
    with pytest.raises(pyude.SolverError, match="MaxIters.*maxiters=5") as info:
        pyude.solve(prob, pyude.Tsit5(), maxiters=5)
    sol = info.value.solution
    assert sol.retcode is pyude.ReturnCode.MaxIters and len(sol) <= 6
    quiet = pyude.solve(prob, pyude.Tsit5(), maxiters=5, throw=False)
    assert quiet.retcode is pyude.ReturnCode.MaxIters and not quiet.success
    with pytest.raises(pyude.SolverError, match="increase|Raise `maxiters`"):
        quiet.raise_for_status()


def test_blow_up_ends_before_the_singularity():
    """u' = u^2 from u(0) = 1 blows up at t = 1."""
    prob = pyude.ODEProblem(lambda u, p, t: [u[0] ** 2], [1.0], (0.0, 2.0))
    sol = pyude.solve(prob, pyude.Tsit5(), throw=False)
    assert sol.retcode in (pyude.ReturnCode.DtLessThanMin, pyude.ReturnCode.Unstable,
                           pyude.ReturnCode.MaxIters)
    assert sol.t[-1].item() < 1.0 and torch.isfinite(sol.u).all()


def test_nan_from_f_ends_unstable_without_nan_in_the_result():
    def f(u, p, t):
        return [u[0] * (math.nan if t > 0.5 else 1.0)]

    sol = pyude.solve(pyude.ODEProblem(f, [1.0], (0.0, 1.0)), pyude.Tsit5(), throw=False)
    assert sol.retcode is pyude.ReturnCode.Unstable
    assert torch.isfinite(sol.u).all() and sol.t[-1].item() <= 0.5
    assert "NaN or Inf" in sol.message
    fixed = pyude.solve(pyude.ODEProblem(f, [1.0], (0.0, 1.0)), pyude.Euler(), dt=0.1,
                        throw=False)
    assert fixed.retcode is pyude.ReturnCode.Unstable and torch.isfinite(fixed.u).all()


def test_dtmin_ends_the_solve():
    prob = pyude.problems.van_der_pol_problem(mu=1e4)
    sol = pyude.solve(prob, pyude.Tsit5(), dtmin=1e-3, throw=False)
    assert sol.retcode is pyude.ReturnCode.DtLessThanMin and "dtmin" in sol.message


def test_exception_inside_f_propagates_unchanged():
    class ModelBug(Exception):
        pass

    def f(u, p, t):
        if t > 0.1:
            raise ModelBug("boom")
        return [u[0]]

    with pytest.raises(ModelBug, match="boom"):
        pyude.solve(pyude.ODEProblem(f, [1.0], (0.0, 1.0)), pyude.Tsit5())


@pytest.mark.gpu
@pytest.mark.parametrize("entry", SOLVERS, ids=ids(SOLVERS))
def test_cuda_follows_u0(entry):
    u0 = torch.tensor([1.0, 0.0], dtype=torch.float64, device="cuda")
    sol = pyude.solve(oscillator_problem(tspan=(0.0, 2.0), u0=u0), entry.solver,
                      **_kwargs(entry, rtol=1e-8, atol=1e-8))
    assert sol.u.device.type == "cuda" and sol.t.device.type == "cuda"
    tol = 1e-6 if entry.order >= 3 else 1e-2
    np.testing.assert_allclose(sol.u[-1].cpu().numpy(), oscillator_exact(2.0), atol=tol)
