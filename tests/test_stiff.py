"""Stiff solvers against the Bari Test Set references, and stiff-specific behaviour."""

import numpy as np
import pytest
import torch

import pyude
from helpers import ESDIRK, FIXED_STEP_NEWTON, STIFF, ids, observed_order, slow_for
from problems import REFERENCES, ROBER_TABLE, SHORTFALLS, mescd
from pyude import problems as P


def _cases():
    for entry in STIFF:
        for name in REFERENCES:
            for rtol in (1e-6, 1e-8):
                marks = []
                if (entry.id, name, rtol) in SHORTFALLS:
                    marks.append(pytest.mark.xfail(strict=True, reason="measured shortfall"))
                if entry.order <= 2 and rtol == 1e-8:
                    marks.append(pytest.mark.slow)
                yield pytest.param(entry, name, rtol, marks=marks,
                                   id=f"{entry.id}-{name}-{rtol:.0e}")


@pytest.mark.parametrize("entry,name,rtol", list(_cases()))
def test_reaches_the_test_set_reference(entry, name, rtol):
    make, reference, atol_ratio = REFERENCES[name]
    prob = make()
    atol = rtol * atol_ratio
    sol = pyude.solve(prob, entry.solver, rtol=rtol, atol=atol, saveat=[prob.tspan[1]],
                      maxiters=10**6)
    assert mescd(sol.u[-1].numpy(), reference, rtol, atol) >= -np.log10(rtol) - 1


@pytest.mark.parametrize("rtol", [1e-3, 1e-4])
@pytest.mark.parametrize("entry", ESDIRK, ids=ids(ESDIRK))
def test_reused_jacobian_keeps_van_der_pol_in_phase(entry, rtol):
    # A Jacobian taken mid-jump and reused on the slow branch made W's corrections tiny
    # while the residual was not: Newton accepted its first iterate, the error estimate
    # (filtered through that W) was near zero, and the solution lagged a whole jump behind
    # (mescd -0.03 for TRBDF2 and KenCarp4). Now a reused W must show a convergence rate.
    make, reference, atol_ratio = REFERENCES["vdpol"]
    prob = make()
    atol = rtol * atol_ratio
    sol = pyude.solve(prob, entry.solver, rtol=rtol, atol=atol, saveat=[prob.tspan[1]])
    assert mescd(sol.u[-1].numpy(), reference, rtol, atol) >= 1.0


def test_newton_corrections_below_round_off_are_convergence():
    # With a reused W a stage takes a second iteration to measure a rate. When the guess is
    # already the solution to round-off (Kvaerno5's last stage starts from the one before,
    # at the same time), both corrections are round-off and their ratio is noise: a ratio
    # above 1 is not divergence once the correction is below the state's round-off.
    from pyude.solvers._newton import solve_stage

    def stage(floor):
        corrections = iter([1e-17, 2e-17, 4e-17])
        return solve_stage(lambda z: torch.full((2,), next(corrections), dtype=torch.float64),
                           lambda r: r, torch.zeros(2, dtype=torch.float64),
                           torch.full((2,), 1e-5, dtype=torch.float64), 0.5,
                           min_iterations=2, floor=floor)

    result, eta = stage(floor=2.2e-16 * 1e5)       # eps |u| / scale with |u| = 1
    assert result.converged and result.iterations == 2 and eta == 0.5 ** 0.8
    result, eta = stage(floor=1e-13)                # corrections of 1e-12 above the floor
    assert not result.converged and result.iterations == 2 and eta == 0.5


def test_predictive_control_saves_rejections_into_van_der_pol_jumps():
    # Into each jump the error grows from step to step: the PI controller grows the step
    # after an accepted one and is rejected, again and again (Rodas5P at rtol 1e-4: 71
    # rejected against 165 accepted); Gustafsson's prediction shrinks ahead of the rise.
    make, reference, _ = REFERENCES["vdpol"]
    prob, solver = make(), pyude.Rodas5P(autodiff=False)
    kw = dict(rtol=1e-4, atol=1e-4, saveat=[prob.tspan[1]])
    pi = pyude.solve(prob, solver, **kw)
    pred = pyude.solve(prob, solver, controller=pyude.PredictiveController(), **kw)
    assert pred.stats.nreject < pi.stats.nreject / 2
    assert pred.stats.naccept + pred.stats.nreject < pi.stats.naccept + pi.stats.nreject
    assert mescd(pred.u[-1].numpy(), reference, 1e-4, 1e-4) >= 3


@pytest.mark.parametrize("entry", STIFF, ids=ids(STIFF))
def test_rober_intermediate_table_and_mass(entry):
    times = sorted(ROBER_TABLE)
    sol = pyude.solve(P.rober_problem(tspan=(0.0, 100.0)), entry.solver, rtol=1e-6,
                      atol=1e-10, saveat=times)
    np.testing.assert_allclose(sol.u.numpy(), np.array([ROBER_TABLE[t] for t in times]),
                               rtol=1e-3, atol=1e-8)
    # Runge-Kutta and Rosenbrock steps keep linear invariants to round-off.
    np.testing.assert_allclose(sol.u.sum(dim=-1).numpy(), 1.0, atol=1e-13)


def test_explicit_solver_on_rober_stops_with_maxiters():
    sol = pyude.solve(P.rober_problem(), pyude.Tsit5(), maxiters=2000, throw=False)
    assert sol.retcode is pyude.ReturnCode.MaxIters
    assert sol.t[-1].item() < 1e5 and "stiff" in sol.message


def _cubic_decay():
    """u' = -1e4 u^3 from u = 10: u(t) = (1/100 + 2e4 t)^(-1/2). A step of 1 takes u from 10
    to about 0.3, where the slope is a hundredfold smaller than at the start, so simplified
    Newton with the starting Jacobian cannot converge."""
    return pyude.ODEProblem(lambda u, p, t: [-1e4 * u[0] ** 3], [10.0], (0.0, 3.0))


@pytest.mark.parametrize("entry", ESDIRK, ids=ids(ESDIRK))
def test_newton_failure_at_a_fixed_step_is_a_convergence_failure(entry):
    sol = pyude.solve(_cubic_decay(), entry.solver, dt=1.0, adaptive=False, throw=False)
    assert sol.retcode is pyude.ReturnCode.ConvergenceFailure
    assert torch.isfinite(sol.u).all() and len(sol) == 1
    with pytest.raises(pyude.SolverError, match="ConvergenceFailure.*Newton"):
        pyude.solve(_cubic_decay(), entry.solver, dt=1.0, adaptive=False)


@pytest.mark.parametrize("entry", ESDIRK, ids=ids(ESDIRK))
def test_newton_failure_shrinks_the_step_when_adaptive(entry):
    """A first step far too large for Newton is retried smaller, never accepted."""
    sol = pyude.solve(_cubic_decay(), entry.solver, dt=1e-2, rtol=1e-6, atol=1e-9)
    assert sol.success and sol.stats.nreject > 0
    exact = (1 / 100 + 2e4 * 3.0) ** -0.5
    assert sol.u[-1, 0].item() == pytest.approx(exact, rel=1e-3)


def _prothero_robinson(float_time=False, lam=-1e4, t1=2.0):
    """y' = lam (y - sin t) + cos t, exact solution sin t; time enters through df/dt."""
    import math

    def f(u, p, t):
        (y,) = u
        if float_time:              # math.sin takes a number, not a tensor of times
            return [p.lam * (y - math.sin(t)) + math.cos(t)]
        t = torch.as_tensor(t, dtype=y.dtype)
        return [p.lam * (y - torch.sin(t)) + torch.cos(t)]
    return pyude.ODEProblem(f, [0.0], (0.0, t1), dict(lam=lam))


@pytest.mark.parametrize("entry", STIFF, ids=ids(STIFF))
def test_order_reduction_on_prothero_robinson(entry):
    """Fixed steps on Prothero-Robinson over [0, 1]: at lam = -1 the method's order; at
    lam = -1e6, with dt |lam| from 8e3 to 1.3e5, the stiff order the registry documents
    (Rodas4 falls to 1, Rodas5P to 3, the ESDIRKs to their stage order 2)."""
    def order(lam, ks):
        prob = _prothero_robinson(lam=lam, t1=1.0)
        return observed_order([
            abs(pyude.solve(prob, entry.solver, dt=2.0**-k, adaptive=False,
                            **FIXED_STEP_NEWTON).u[-1, 0].item() - np.sin(1.0)) for k in ks])
    assert order(-1.0, range(2, 6)) == pytest.approx(entry.order, abs=0.2)
    assert order(-1e6, range(3, 8)) == pytest.approx(entry.stiff_order, abs=0.2)


@pytest.mark.parametrize("float_time", [False, True], ids=["tensor-t", "float-t"])
def test_finite_difference_time_derivative(float_time):
    """df/dt rides in the Jacobian's one call of f, as a tensor of times; an f that needs t
    as a number is asked separately. Rosenbrock methods need df/dt: with it set to zero,
    Rodas5P here stalls at t = 0.04 after 100000 steps; with it, 38 steps."""
    from pyude._model import RHS
    from pyude.solvers._jacobian import jacobian_finite_difference

    prob = _prothero_robinson(float_time)
    rhs = RHS(prob.f, prob.p)
    jac, dfdt, _ = jacobian_finite_difference(rhs, 0.5,
                                              torch.tensor([0.3], dtype=torch.float64))
    assert jac.item() == pytest.approx(-1e4)
    assert dfdt.item() == pytest.approx(1e4 * np.cos(0.5) - np.sin(0.5), rel=1e-7)
    assert getattr(rhs, "_float_time_only", False) is float_time
    sol = pyude.solve(prob, pyude.Rodas5P(autodiff=False), rtol=1e-8, atol=1e-10,
                      saveat=[2.0])
    assert sol.u[-1, 0].item() == pytest.approx(np.sin(2.0), abs=1e-8)


@pytest.mark.parametrize("entry", STIFF, ids=ids(STIFF))
def test_user_jacobian_and_finite_differences_agree_with_autodiff(entry):
    def jac(u, p, t):
        y1, y2, y3 = u
        return [[-p.k1, p.k3 * y3, p.k3 * y2],
                [p.k1, -2 * p.k2 * y2 - p.k3 * y3, -p.k3 * y2],
                [0.0, 2 * p.k2 * y2, 0.0]]

    base = P.rober_problem(tspan=(0.0, 1e3))
    with_jac = pyude.ODEProblem(base.f, base.u0, base.tspan, base.p, jac=jac)
    kw = dict(rtol=1e-8 if entry.order > 2 else 1e-6, atol=1e-12, saveat=[1e3],
              backend="native")                   # the torch steppers' three Jacobians
    auto = pyude.solve(base, entry.solver, **kw)
    user = pyude.solve(with_jac, entry.solver, **kw)
    fd = pyude.solve(base, type(entry.solver)(autodiff=False), **kw)
    np.testing.assert_allclose(user.u.numpy(), auto.u.numpy(), rtol=1e-9)
    np.testing.assert_allclose(fd.u.numpy(), auto.u.numpy(), rtol=1e-6)
    assert auto.stats.njacs > 0 and auto.stats.nw >= auto.stats.njacs


@pytest.mark.parametrize("autodiff", [True, False], ids=["autodiff", "differences"])
def test_rosenbrock_step_takes_f_with_its_jacobian(autodiff):
    """The call of f that takes a step's Jacobian also gives f at its start, so N fixed
    Rodas5P steps cost f0, N Jacobian calls, seven stage calls each, and f at the end (no
    Jacobian is taken there), plus, for automatic differentiation, one probe (does f reach
    a tensor that wants a gradient? it decides between reverse and forward mode); with the
    problem's own jac, f at each step's end is its own call."""
    base, n = P.vdpol_problem(tspan=(0.0, 1.0)), 10
    kw = dict(dt=0.1, adaptive=False, saveat=[1.0], backend="native")   # torch's stepper
    merged = pyude.solve(base, pyude.Rodas5P(autodiff=autodiff), **kw)
    probe = 1 if autodiff else 0
    assert (merged.stats.nf, merged.stats.njacs) == (1 + probe + n + 7 * n + 1, n)

    def jac(u, p, t):
        y1, y2 = u
        return [[0.0, 1.0], [-2 * p.mu * y1 * y2 - 1, p.mu * (1 - y1**2)]]
    own = pyude.solve(pyude.ODEProblem(base.f, base.u0, base.tspan, base.p, jac=jac),
                      pyude.Rodas5P(autodiff=autodiff), **kw)
    assert own.stats.njacs == n
    torch.testing.assert_close(merged.u, own.u, rtol=1e-10, atol=0)


def test_batched_rober_rates_match_single_solves():
    gen = torch.Generator().manual_seed(0)
    scale = 0.5 + 1.5 * torch.rand(4, 3, generator=gen, dtype=torch.float64)
    rates = {k: v * scale[:, i] for i, (k, v) in enumerate(dict(k1=0.04, k2=3e7, k3=1e4).items())}
    u0 = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64).expand(4, 3)
    kw = dict(rtol=1e-7, atol=1e-11, saveat=[1.0, 1e4])
    batch = pyude.solve(pyude.ODEProblem(P.rober, u0, (0.0, 1e4), rates), pyude.Rodas5P(), **kw)
    for i in range(4):
        single = pyude.solve(pyude.ODEProblem(P.rober, u0[i], (0.0, 1e4),
                                              {k: v[i] for k, v in rates.items()}),
                             pyude.Rodas5P(), **kw)
        np.testing.assert_allclose(batch.u[:, i].numpy(), single.u.numpy(), rtol=1e-5,
                                   atol=1e-11)


@pytest.mark.parametrize("entry", slow_for(STIFF, {"Rodas4()", "Rosenbrock23()"}),
                         ids=ids(STIFF))
def test_gradient_through_stiff_steps_matches_finite_differences(entry):
    """d y3(T) / d log k1 on ROBER, by backpropagation through the stiff steps."""
    # Tolerances by order keep the step count (and the backward pass) moderate; the gradient
    # agreement asked for follows SciMLSensitivity's stiff tests (1e-3 for the low orders).
    rtol, tol = {2: (1e-7, 1e-3), 4: (1e-9, 1e-5), 5: (1e-10, 1e-5)}[entry.order]

    def final(log_k1):
        p = dict(k1=torch.exp(log_k1), k2=3e7, k3=1e4)
        sol = pyude.solve(pyude.ODEProblem(P.rober, (1.0, 0.0, 0.0), (0.0, 10.0), p),
                          entry.solver, rtol=rtol, atol=rtol * 1e-4, saveat=[10.0])
        return sol.u[-1, 2]

    x = torch.tensor(np.log(0.04), dtype=torch.float64, requires_grad=True)
    final(x).backward()
    h = 1e-5
    fd = (final(x.detach() + h) - final(x.detach() - h)).item() / (2 * h)
    assert x.grad.item() == pytest.approx(fd, rel=tol)


@pytest.mark.parametrize("batch", [(), (4,), (2, 3)], ids=["single", "batched", "batched-2d"])
def test_finite_difference_jacobian_carries_f_and_matches_autodiff(batch):
    from pyude._model import RHS
    from pyude.solvers import _jacobian

    prob = pyude.problems.rober_problem()
    u = (prob.u0 + torch.tensor([0.0, 1e-5, 0.01], dtype=torch.float64)).expand(*batch, 3)
    rhs = RHS(prob.f, prob.p)
    J, dfdt, f = _jacobian.jacobian_finite_difference(rhs, 2.0, u)
    assert J.shape == (*batch, 3, 3) and dfdt.shape == (*batch, 3)
    exact = _jacobian.jacobian_autodiff(rhs, 2.0, u)[0]
    torch.testing.assert_close(J, exact, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(dfdt, torch.zeros_like(dfdt), rtol=0, atol=1e-6)
    # f(t, u) itself rides in the same call, for the step that follows.
    torch.testing.assert_close(f, rhs(2.0, u), rtol=0, atol=0)


def test_singular_w_fails_the_step():
    from pyude._model import RHS
    prob = pyude.problems.rober_problem()
    rhs, u, dt = RHS(prob.f, prob.p), prob.u0, 0.1
    solver = pyude.Rodas5P()
    cache = solver.init_cache()
    cache.J = torch.eye(3, dtype=u.dtype) / (dt * solver.tableau.gamma)      # W = 0
    cache.dT, cache.key = torch.zeros_like(u), (0.0, id(u))
    assert not solver.step(rhs, 0.0, u, rhs(0.0, u), dt, cache).ok
    solver = pyude.KenCarp4()
    cache = solver.init_cache()
    cache.J, cache.fresh_at = torch.eye(3, dtype=u.dtype) / (dt * solver.tableau.gamma), (0, 0)
    assert not solver._attempt(rhs, 0.0, u, rhs(0.0, u), dt, cache).ok


def test_jacobian_shape_error():
    prob = pyude.ODEProblem(P.rober, (1.0, 0.0, 0.0), (0.0, 1.0), dict(k1=0.04, k2=3e7, k3=1e4),
                            jac=lambda u, p, t: [[1.0, 0.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match="jac returned shape"):
        pyude.solve(prob, pyude.Rodas5P())
    with pytest.raises(TypeError, match="jac must be a callable"):
        pyude.ODEProblem(P.rober, (1.0, 0.0, 0.0), (0.0, 1.0), None, jac=3)


@pytest.mark.parametrize("n", [3, 40], ids=["inverse", "lu"])
@pytest.mark.parametrize("batch", [(), (5,)], ids=["single", "batched"])
def test_factorised_w_solves_like_torch(n, batch):
    # Small systems go through W^-1, larger ones through LU factors: both must solve.
    from pyude.solvers._linear import factorise
    gen = torch.Generator().manual_seed(n)
    W = torch.randn(*batch, n, n, generator=gen, dtype=torch.float64) + 3 * torch.eye(n)
    b = torch.randn(*batch, n, generator=gen, dtype=torch.float64)
    expected = torch.linalg.solve(W, b)
    assert torch.allclose(factorise(W)(b), expected, rtol=1e-12, atol=1e-12)
    singular = W.clone()
    singular[..., 0, :] = 0.0
    assert factorise(singular) is None


def test_stage_sum_equals_the_written_sum_and_carries_gradients():
    from pyude.solvers._dense import axpy
    u = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    ks = [torch.randn(4, 3, dtype=torch.float64) * (i + 1) for i in range(5)]
    coeffs = [0.5, -2.0, 0.0, 1.25, 3.0]
    written = u + 0.1 * sum(c * k for c, k in zip(coeffs, ks))
    assert torch.allclose(axpy(u, 0.1, coeffs, ks), written, rtol=1e-14, atol=1e-14)
    assert torch.allclose(axpy(None, 0.1, coeffs, ks), written - u, rtol=1e-14, atol=1e-14)
    axpy(u, 0.1, coeffs, ks).sum().backward()
    assert torch.equal(u.grad, torch.ones_like(u))
