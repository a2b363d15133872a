"""DirectAdjoint(checkpointing=True) on the numba backend: the same intervals, steps, saved
states and gradients as the torch backend's checkpointed solve, the gradient against central
differences, one interval's steps held at a time by the backward pass, a UDE trained with
it, and the refusals and failures by their messages."""

import re

import numpy as np
import pytest
import torch

import pyude
from pyude._options import build_options
from pyude.backends.numba._gradient import GradientNotSupported, prepare, solve_with_gradient
from pyude.sensitivity._checkpoint import NEEDS_SAVEAT

CHECKPOINTED = pyude.DirectAdjoint(checkpointing=True)
FROM_T0 = [0.0, 0.5, 1.3, 2.0, 3.1, 4.0]
AFTER_T0 = [0.5, 1.3, 2.0, 3.1, 4.0]
TSTOPS = [1.7]          # inside an interval: the interval lands on it


def problem(u0=(1.0, 1.0), alpha=1.5, beta=1.0):
    """Lotka-Volterra with u0, alpha and beta differentiable."""
    u0 = torch.tensor(u0, dtype=torch.float64, requires_grad=True)
    a = torch.tensor(alpha, dtype=torch.float64, requires_grad=True)
    b = torch.tensor(beta, dtype=torch.float64, requires_grad=True)
    p = {"alpha": a, "beta": b, "gamma": 3.0, "delta": 1.0}
    return pyude.ODEProblem(pyude.problems.lotka_volterra, u0, (0.0, 4.0), p), [u0, a, b]


def numba_solve(prob, solver, sensealg=CHECKPOINTED, saveat=FROM_T0, **kw):
    kw = {"rtol": 1e-6, "atol": 1e-8, "maxiters": 100_000, **kw}
    opts = build_options(prob, solver, saveat=saveat, **kw)
    return solve_with_gradient(prob, solver, opts, sensealg)


def native_solve(prob, solver, sensealg=CHECKPOINTED, saveat=FROM_T0, **kw):
    kw = {"rtol": 1e-6, "atol": 1e-8, "maxiters": 100_000, **kw}
    return pyude.solve(prob, solver, saveat=saveat, sensealg=sensealg, backend="native",
                       **kw)


def loss_of(u):
    return (u ** 2).sum() + u[..., 0].sum()


def gradient(sol, leaves):
    return torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss_of(sol.u), leaves)])


def rel(a, b):
    return float((a - b).abs().max() / b.abs().max())


CASES = [(pyude.Tsit5(), FROM_T0), (pyude.Tsit5(), AFTER_T0), (pyude.DP5(), FROM_T0),
         (pyude.Vern7(), AFTER_T0)]


@pytest.mark.parametrize("solver, saveat", CASES,
                         ids=[f"{s!r}-{'from' if t[0] == 0 else 'after'}-t0" for s, t in CASES])
def test_states_steps_and_gradient_equal_the_torch_backend(solver, saveat):
    prob, leaves = problem()
    a = numba_solve(prob, solver, saveat=saveat, tstops=TSTOPS)
    ga = gradient(a, leaves)
    prob, leaves = problem()
    b = native_solve(prob, solver, saveat=saveat, tstops=TSTOPS)
    gb = gradient(b, leaves)
    assert a.success and a.retcode == b.retcode and a.message == b.message
    assert a.stats == b.stats                          # interval by interval, the same steps
    torch.testing.assert_close(a.t, b.t, rtol=0, atol=0)
    torch.testing.assert_close(a.u, b.u, rtol=1e-12, atol=1e-12)
    assert a.u.shape == (len(saveat), 2)
    assert rel(ga, gb) < 1e-10


def test_each_interval_has_its_own_step_sequence():
    # checkpointing restarts the steps at every saved time: not the one-sequence solve
    prob, _ = problem()
    a = numba_solve(prob, pyude.Tsit5())
    prob, _ = problem()
    b = numba_solve(prob, pyude.Tsit5(), pyude.DirectAdjoint())
    assert a.stats.naccept != b.stats.naccept
    torch.testing.assert_close(a.u, b.u, rtol=1e-4, atol=1e-5)


def test_fixed_steps_and_reverse_time_equal_the_torch_backend():
    for kw in [{"dt": 0.05, "adaptive": False, "saveat": [0.0, 0.33, 1.0, 2.71, 4.0]},
               {"saveat": [4.0, 3.0, 1.5, 0.0], "tspan": (4.0, 0.0)}]:
        tspan = kw.pop("tspan", (0.0, 4.0))
        results = []
        for solve in (numba_solve, native_solve):
            prob, leaves = problem()
            prob = pyude.ODEProblem(prob.f, prob.u0, tspan, prob.p)
            sol = solve(prob, pyude.Tsit5(), **kw)
            results.append((sol.u.detach(), gradient(sol, leaves)))
        torch.testing.assert_close(results[0][0], results[1][0], rtol=1e-12, atol=1e-12)
        assert rel(results[0][1], results[1][1]) < 1e-10


def test_gradient_matches_central_differences():
    kw = {"rtol": 1e-11, "atol": 1e-11}
    prob, leaves = problem()
    g = gradient(numba_solve(prob, pyude.Tsit5(), **kw), leaves)

    def loss(x):
        prob, _ = problem(x[:2], *x[2:])
        with torch.no_grad():
            return loss_of(numba_solve(prob, pyude.Tsit5(), **kw).u).item()

    x, h, fd = [1.0, 1.0, 1.5, 1.0], 1e-5, []
    for i in range(4):
        up, dn = list(x), list(x)
        up[i] += h
        dn[i] -= h
        fd.append((loss(up) - loss(dn)) / (2 * h))
    assert rel(g, torch.tensor(fd, dtype=torch.float64)) < 1e-5


def test_the_backward_pass_holds_one_interval_of_steps_at_a_time():
    from pyude.backends.numba import _loop as lp
    from pyude.backends.numba._checkpoint import CheckpointRun, Intervals
    from pyude.backends.numba._grad_model import _pack, gradient_model, param_tensors
    from pyude.backends.numba._methods import pack_method
    prob, _ = problem()
    solver = pyude.Tsit5()
    opts = build_options(prob, solver, saveat=FROM_T0, rtol=1e-8, atol=1e-8)
    model, method = gradient_model(prob), pack_method(solver)
    tensors, kinds = param_tensors(prob, model)
    run = CheckpointRun(model, method, Intervals(prob, method, opts))
    us = run.forward(prob.u0.detach().numpy(), _pack(tensors, kinds))
    assert us.shape == (len(FROM_T0), 2) and run.most_steps_held == 0
    g_u0, g_p = run.backward(np.ones_like(us))
    per_interval = [int(out[lp.OUT_NACCEPT]) for out in run.outs]
    assert len(per_interval) == len(FROM_T0) - 1
    assert run.total_steps == sum(per_interval) == numba_solve(
        prob, solver, rtol=1e-8, atol=1e-8).stats.naccept
    assert run.most_steps_held == max(per_interval)
    assert run.most_steps_held < run.total_steps / 2
    assert g_u0.shape == (2,) and g_p.shape == _pack(tensors, kinds).shape


def test_a_batch_of_initial_states_equals_the_torch_backend():
    from helpers import lv_batch

    def run(solve):
        prob, u0, a = lv_batch()
        sol = solve(prob, pyude.Tsit5(), saveat=AFTER_T0, dt=0.05, adaptive=False)
        assert sol.u.shape == (len(AFTER_T0), 3, 2) and sol.success
        return sol.u.detach(), gradient(sol, [u0, a])

    u1, g1 = run(numba_solve)
    u2, g2 = run(native_solve)
    torch.testing.assert_close(u1, u2, rtol=1e-12, atol=1e-12)
    assert rel(g1, g2) < 1e-10


@pytest.mark.parametrize("saveat", [None, [2.0]], ids=["no-saveat", "one-time"])
def test_saveat_with_fewer_than_two_times_is_refused_as_on_the_torch_backend(saveat):
    for solve in (numba_solve, native_solve):
        prob, _ = problem()
        with pytest.raises(ValueError, match=re.escape(NEEDS_SAVEAT)):
            solve(prob, pyude.Tsit5(), saveat=saveat)
    prob, _ = problem()
    with pytest.raises(ValueError, match=re.escape(NEEDS_SAVEAT)):
        pyude.solve(prob, pyude.Tsit5(), saveat=saveat, sensealg=CHECKPOINTED,
                    backend="numba")


def test_a_stiff_method_is_refused_by_name_and_auto_takes_the_torch_backend(monkeypatch):
    from pyude import backends
    prob, leaves = problem()
    words = r"DirectAdjoint\(checkpointing=True\) differentiates explicit.*Rodas5P\(\).*" \
            r"InterpolatingAdjoint\(\).*backend='native'"
    with pytest.raises(GradientNotSupported, match=words):
        numba_solve(prob, pyude.Rodas5P())
    with pytest.raises(ValueError, match="cannot solve on the numba backend: .*" + words):
        pyude.solve(prob, pyude.Rodas5P(), saveat=FROM_T0, sensealg=CHECKPOINTED,
                    backend="numba")
    monkeypatch.setattr(backends, "_ANNOUNCED", set())
    monkeypatch.setattr(backends, "AUTO_ORDER", ("numba", "native"))
    with pytest.warns(backends.BackendNotice, match="solves on the native backend: .*" + words):
        a = pyude.solve(prob, pyude.Rodas5P(), saveat=FROM_T0, sensealg=CHECKPOINTED,
                        rtol=1e-6, atol=1e-8, backend="auto")
    ga = gradient(a, leaves)
    prob, leaves = problem()
    gb = gradient(native_solve(prob, pyude.Rodas5P()), leaves)
    assert rel(ga, gb) < 1e-12
    # an explicit method: auto keeps the compiled backend
    prob, _ = problem()
    with pytest.warns(backends.BackendNotice, match="solves on the numba backend$"):
        assert pyude.solve(prob, pyude.Tsit5(), saveat=FROM_T0, sensealg=CHECKPOINTED,
                           backend="auto").success


@pytest.mark.parametrize("saveat", [[0.0, 0.1, 0.2, 2.0, 4.0], [0.1, 0.2, 2.0, 4.0]],
                         ids=["from-t0", "after-t0"])
def test_a_failed_interval_returns_the_partial_solution_without_a_gradient(saveat):
    # maxiters counts each interval's steps: the short intervals pass, [0.2, 2] does not
    sols = []
    for solve, kw in [(numba_solve, {}), (native_solve, {"throw": False})]:
        prob, _ = problem()
        sol = solve(prob, pyude.Tsit5(), saveat=saveat, maxiters=10, rtol=1e-8, **kw)
        sols.append(sol)
        assert sol.retcode is pyude.ReturnCode.MaxIters
        with pytest.raises(RuntimeError, match="the forward solve failed, so its gradient "
                                               "is undefined: maxiters=10 reached at t="):
            sol.u.sum().backward()
    a, b = sols
    # (where the failed interval stopped agrees to the controller's round-off)
    t_stop = r"t=([0-9.]+)\."
    assert re.sub(t_stop, "", a.message) == re.sub(t_stop, "", b.message)
    assert abs(float(re.search(t_stop, a.message)[1]) -
               float(re.search(t_stop, b.message)[1])) < 1e-7
    assert a.stats == b.stats
    torch.testing.assert_close(a.t, b.t, rtol=0, atol=0)
    assert a.u.shape == (saveat.index(0.2) + 1, 2)
    torch.testing.assert_close(a.u, b.u, rtol=1e-12, atol=1e-12)


def test_a_prepared_solve_refuses_the_gradient_of_a_failed_interval():
    prob, _ = problem()
    opts = build_options(prob, pyude.Tsit5(), saveat=[0.0, 0.1, 2.0], maxiters=10, rtol=1e-8)
    solve = prepare(prob, pyude.Tsit5(), opts, CHECKPOINTED)
    u = solve()
    assert u.shape == (2, 2)
    with pytest.raises(RuntimeError, match="the forward solve failed, so its gradient is "
                                           "undefined: maxiters=10 reached at t="):
        u.sum().backward()
    with pytest.raises(ValueError, match=re.escape(NEEDS_SAVEAT)):
        prepare(prob, pyude.Tsit5(), build_options(prob, pyude.Tsit5()), CHECKPOINTED)


# --- a UDE ------------------------------------------------------------------------------

U0 = (0.44249296, 4.6280594)
TIMES = np.linspace(0.0, 3.0, 16).tolist()


def lv_ude(u, p, t, nn):
    m = nn(u)
    return [p.alpha * u[0] + m[0], -p.gamma * u[1] + m[1]]


def ude_model():
    torch.manual_seed(1)
    net = torch.nn.Sequential(torch.nn.Linear(2, 5), pyude.nn.RBF(), torch.nn.Linear(5, 5),
                              torch.nn.Tanh(), torch.nn.Linear(5, 2)).double()
    return pyude.UDE(lv_ude, net, {"alpha": 1.3, "gamma": 1.8}, trainable=["alpha"])


def train(backend, steps=4):
    """Adam on a UDE with the checkpointed adjoint: the losses and each step's gradients."""
    ude = ude_model()
    prob = pyude.ODEProblem(ude.field, torch.tensor(U0, dtype=torch.float64), (0.0, 3.0))
    truth = torch.linspace(0.5, 2.0, len(TIMES), dtype=torch.float64)[:, None].expand(-1, 2)
    opt = torch.optim.Adam(ude.parameters(), lr=1e-2)
    if backend == "numba":
        opts = build_options(prob, pyude.Tsit5(), saveat=TIMES, rtol=1e-7, atol=1e-7)
        solve = prepare(prob, pyude.Tsit5(), opts, CHECKPOINTED)
    else:
        def solve():
            return pyude.solve(prob, pyude.Tsit5(), saveat=TIMES, rtol=1e-7, atol=1e-7,
                               sensealg=CHECKPOINTED, backend="native").u
    losses, grads = [], []
    for _ in range(steps):
        loss = ((solve() - truth) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        grads.append(torch.cat([p.grad.reshape(-1) for p in ude.parameters()]))
        opt.step()
        losses.append(loss.item())
    return losses, grads


def test_a_ude_trains_with_checkpointing_as_on_the_torch_backend():
    a, ga = train("numba")
    b, gb = train("native")
    np.testing.assert_allclose(a, b, rtol=1e-10)
    assert a[-1] < a[0]
    for x, y in zip(ga, gb):
        assert rel(x, y) < 1e-8


def test_a_ude_gradient_with_and_without_checkpointing_differs_by_the_steps_only():
    grads = []
    for sensealg in (CHECKPOINTED, pyude.DirectAdjoint()):
        ude = ude_model()
        prob = pyude.ODEProblem(ude.field, torch.tensor(U0, dtype=torch.float64), (0.0, 3.0))
        opts = build_options(prob, pyude.Tsit5(), saveat=TIMES, rtol=1e-10, atol=1e-10)
        sol = solve_with_gradient(prob, pyude.Tsit5(), opts, sensealg)
        g = torch.autograd.grad((sol.u ** 2).sum(), list(ude.parameters()))
        grads.append(torch.cat([x.reshape(-1) for x in g]))
    assert rel(grads[0], grads[1]) < 1e-6
