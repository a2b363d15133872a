"""Gradients through numba solves: the discrete adjoint of the accepted steps against
backpropagation through the torch steps (DirectAdjoint) and against central differences,
over the registry's explicit methods; refusals of what the numba backend does not
differentiate. One compiled model (Lotka-Volterra with named parameters) serves the file."""

import numpy as np
import pytest
import torch
from helpers import EXPLICIT, ids

import pyude
from pyude._options import build_options
from pyude.backends.numba._gradient import GradientNotSupported, solve_with_gradient

SAVEAT = np.linspace(0.0, 4.0, 9).tolist()


def numba_solve(prob, solver, sensealg=None, saveat=None, dt=None, rtol=1e-6, atol=1e-8,
                adaptive=None, tstops=None):
    opts = build_options(prob, solver, saveat=saveat, dt=dt, rtol=rtol, atol=atol, maxiters=100_000,
                         tstops=tstops, adaptive=adaptive)
    return solve_with_gradient(prob, solver, opts, sensealg)


def problem(alpha, u0=(1.0, 1.0), tspan=(0.0, 4.0)):
    """Lotka-Volterra with a differentiable alpha and beta, u0 and the rest fixed."""
    u0 = torch.tensor(u0, dtype=torch.float64, requires_grad=True)
    a = torch.tensor(alpha, dtype=torch.float64, requires_grad=True)
    b = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    p = {"alpha": a, "beta": b, "gamma": 3.0, "delta": 1.0}
    return pyude.ODEProblem(pyude.problems.lotka_volterra, u0, tspan, p), [u0, a, b]


def loss_of(u):
    return (u ** 2).sum() + u[..., 0].sum()


def gradient(solve, alpha=1.5, **kw):
    prob, leaves = problem(alpha)
    sol = solve(prob, **kw)
    loss = loss_of(sol.u)
    return loss.item(), torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, leaves)])


def rel(a, b):
    return float((a - b).abs().max() / b.abs().max())


@pytest.mark.parametrize("entry", EXPLICIT, ids=ids(EXPLICIT))
def test_discrete_adjoint_equals_direct_adjoint_through_the_same_steps(entry):
    # fixed steps: both backends take exactly the same steps; saves fall inside steps
    kw = {"saveat": [0.0, 0.33, 1.0, 2.71, 4.0], "dt": 0.05, "adaptive": False}
    l1, g1 = gradient(lambda prob, **k: numba_solve(prob, entry.solver, **k), **kw)
    l2, g2 = gradient(lambda prob, **k: pyude.solve(prob, entry.solver, **k), **kw)
    assert abs(l1 - l2) <= 1e-12 * abs(l2)
    assert rel(g1, g2) < 1e-10


ADAPTIVE_EXPLICIT = [e for e in EXPLICIT if e.solver.adaptive]


@pytest.mark.parametrize("entry", ADAPTIVE_EXPLICIT, ids=ids(ADAPTIVE_EXPLICIT))
@pytest.mark.parametrize("saveat", [SAVEAT, None], ids=["saveat", "every-step"])
def test_adaptive_gradient_matches_direct_adjoint(entry, saveat):
    # the two backends' adaptive steps agree to round-off amplified by the controller
    kw = {"saveat": saveat, "rtol": 1e-6, "atol": 1e-8, "tstops": [1.7]}
    l1, g1 = gradient(lambda prob, **k: numba_solve(prob, entry.solver, **k), **kw)
    l2, g2 = gradient(lambda prob, **k: pyude.solve(prob, entry.solver, **k), **kw)
    assert abs(l1 - l2) <= 1e-8 * abs(l2)
    assert rel(g1, g2) < (1e-10 if saveat is not None else 1e-7)


@pytest.mark.parametrize("entry", ADAPTIVE_EXPLICIT, ids=ids(ADAPTIVE_EXPLICIT))
@pytest.mark.parametrize("sensealg", [None, pyude.DirectAdjoint()], ids=["default", "direct"])
def test_gradient_matches_central_differences(entry, sensealg):
    kw = {"saveat": SAVEAT, "rtol": 1e-11, "atol": 1e-11}
    _, g = gradient(lambda prob, **k: numba_solve(prob, entry.solver, sensealg, **k), **kw)
    h = 1e-5

    def loss(u0, alpha, beta):
        prob = pyude.ODEProblem(pyude.problems.lotka_volterra,
                                torch.tensor(u0, dtype=torch.float64), (0.0, 4.0),
                                {"alpha": alpha, "beta": beta, "gamma": 3.0, "delta": 1.0})
        with torch.no_grad():
            return loss_of(numba_solve(prob, entry.solver, **kw).u).item()

    x = [1.0, 1.0, 1.5, 1.0]
    fd = []
    for i in range(4):
        up, dn = list(x), list(x)
        up[i] += h
        dn[i] -= h
        fd.append((loss(up[:2], *up[2:]) - loss(dn[:2], *dn[2:])) / (2 * h))
    assert rel(g, torch.tensor(fd, dtype=torch.float64)) < 1e-5


def test_a_tensor_p_and_a_time_dependent_model():
    def forced(u, p, t):
        x, v = u
        return [v, -p[0] * x - p[1] * v + pyude.ops.sin(t)]

    def run(solve):
        u0 = torch.tensor([1.0, 0.0], dtype=torch.float64, requires_grad=True)
        p = torch.tensor([2.0, 0.3], dtype=torch.float64, requires_grad=True)
        sol = solve(pyude.ODEProblem(forced, u0, (0.0, 5.0), p))
        return torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss_of(sol.u), [u0, p])])

    kw = {"saveat": SAVEAT, "dt": 0.01, "adaptive": False}
    g1 = run(lambda prob: numba_solve(prob, pyude.Vern7(), **kw))
    g2 = run(lambda prob: pyude.solve(prob, pyude.Vern7(), **kw))
    assert rel(g1, g2) < 1e-10


def test_a_solve_without_grad_needs_no_backward():
    prob, _ = problem(1.5)
    with torch.no_grad():
        sol = numba_solve(prob, pyude.Tsit5(), saveat=SAVEAT)
    assert not sol.u.requires_grad
    assert sol.u.shape == (len(SAVEAT), 2)


def test_a_sensealg_the_numba_backend_lacks_is_refused_by_name():
    prob, _ = problem(1.5)
    with pytest.raises(GradientNotSupported, match="backend='native'") as err:
        numba_solve(prob, pyude.Tsit5(), pyude.BacksolveAdjoint(), saveat=SAVEAT)
    assert "BacksolveAdjoint()" in str(err.value)


CONTINUOUS = [pyude.InterpolatingAdjoint(), pyude.QuadratureAdjoint(), pyude.GaussAdjoint()]


# every continuous sensealg once, every family and a switch (each sensealg runs the same
# adjoint system here, so the product would repeat it)
CONTINUOUS_CASES = [(pyude.Tsit5(), s) for s in CONTINUOUS] + [
    (pyude.Vern7(), CONTINUOUS[0]), (pyude.Rodas5P(), CONTINUOUS[1]),
    (pyude.KenCarp4(), CONTINUOUS[0]), (pyude.AutoTsit5(pyude.Rosenbrock23()), CONTINUOUS[2])]


@pytest.mark.parametrize("solver, sensealg", CONTINUOUS_CASES,
                         ids=[f"{a!r}-{b!r}" for a, b in CONTINUOUS_CASES])
def test_continuous_adjoints_match_the_torch_backend(solver, sensealg):
    kw = {"saveat": SAVEAT, "rtol": 1e-10, "atol": 1e-10}
    _, g1 = gradient(lambda prob, **k: numba_solve(prob, solver, sensealg, **k), **kw)
    _, g2 = gradient(lambda prob, **k: pyude.solve(prob, pyude.Vern7(), **k), **kw)
    assert rel(g1, g2) < 1e-6


def rober_log(u, p, t):
    """ROBER with its rates as logarithms (the parameters an estimation would fit)."""
    y1, y2, y3 = u
    k1, k2, k3 = pyude.ops.exp(p.lk1), pyude.ops.exp(p.lk2), pyude.ops.exp(p.lk3)
    return [-k1 * y1 + k3 * y2 * y3, k1 * y1 - k2 * y2**2 - k3 * y2 * y3, k2 * y2**2]


def stiff_case(name, values):
    if name == "rober":
        u0 = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64, requires_grad=True)
        ps = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True)
              for k, v in zip(("lk1", "lk2", "lk3"), values)}
        prob = pyude.ODEProblem(rober_log, u0, (0.0, 40.0), ps)
        weights = torch.tensor([1.0, 1e4, 1.0], dtype=torch.float64)
        return prob, list(ps.values()), weights, [0.0, 0.4, 4.0, 40.0]
    u0 = torch.tensor([2.0, 0.0], dtype=torch.float64, requires_grad=True)
    mu = torch.tensor(values[0], dtype=torch.float64, requires_grad=True)
    prob = pyude.ODEProblem(pyude.problems.van_der_pol, u0, (0.0, 2.0), {"mu": mu})
    return prob, [u0, mu], torch.ones(2, dtype=torch.float64), [0.0, 0.5, 1.0, 2.0]


STIFF_CASES = {"rober": [np.log(0.04), np.log(3e7), np.log(1e4)], "vdpol": [100.0]}


@pytest.mark.parametrize("sensealg", [pyude.InterpolatingAdjoint(),
                                      pyude.QuadratureAdjoint()], ids=repr)
@pytest.mark.parametrize("solver", [pyude.Rodas5P(), pyude.KenCarp4()], ids=repr)
@pytest.mark.parametrize("name", list(STIFF_CASES))
def test_continuous_adjoint_on_stiff_problems_matches_central_differences(name, solver,
                                                                          sensealg):
    kw = {"rtol": 1e-10, "atol": 1e-12}
    values = STIFF_CASES[name]
    prob, leaves, weights, saveat = stiff_case(name, values)
    sol = numba_solve(prob, solver, sensealg, saveat=saveat, **kw)
    grads = torch.autograd.grad(((sol.u * weights) ** 2).sum(), leaves)
    g = torch.cat([x.reshape(-1) for x in grads])[-len(values):]   # the parameters' part

    def loss(vals):
        prob, _, weights, saveat = stiff_case(name, vals)
        with torch.no_grad():
            u = numba_solve(prob, solver, sensealg, saveat=saveat, **kw).u
        return ((u * weights) ** 2).sum().item()

    h = 1e-4 * np.maximum(1.0, np.abs(values))
    fd = []
    for i in range(len(values)):
        up, dn = list(values), list(values)
        up[i] += h[i]
        dn[i] -= h[i]
        fd.append((loss(up) - loss(dn)) / (2 * h[i]))
    assert rel(g, torch.tensor(fd, dtype=torch.float64)) < 1e-5


def test_stiff_methods_and_batched_parameters_are_refused():
    prob, _ = problem(1.5)
    with pytest.raises(GradientNotSupported, match="Rodas5P.*InterpolatingAdjoint"):
        numba_solve(prob, pyude.Rodas5P(), saveat=SAVEAT)
    batch = pyude.ODEProblem(pyude.problems.lotka_volterra, torch.ones(3, 2, dtype=torch.float64),
                             (0.0, 4.0), {"alpha": torch.tensor([1.5, 1.4, 1.3]), "beta": 1.0,
                                              "gamma": 3.0, "delta": 1.0})
    with pytest.raises(GradientNotSupported, match="batched parameters"):
        numba_solve(batch, pyude.Tsit5(), saveat=SAVEAT)


def test_a_batch_of_initial_states_sums_its_parameter_gradients():
    from helpers import lv_batch

    def run(solve):
        prob, u0, a = lv_batch()
        sol = solve(prob)
        assert sol.u.shape == (len(SAVEAT), 3, 2)
        g = torch.autograd.grad(loss_of(sol.u), [u0, a])
        return torch.cat([x.reshape(-1) for x in g])

    kw = {"saveat": SAVEAT, "dt": 0.05, "adaptive": False}
    g1 = run(lambda prob: numba_solve(prob, pyude.Tsit5(), **kw))
    g2 = run(lambda prob: pyude.solve(prob, pyude.Tsit5(), **kw))
    assert rel(g1, g2) < 1e-10
    exact = {"saveat": SAVEAT, "rtol": 1e-10, "atol": 1e-10}
    g3 = run(lambda prob: numba_solve(prob, pyude.Rodas5P(), pyude.InterpolatingAdjoint(),
                                      **exact))
    g4 = run(lambda prob: pyude.solve(prob, pyude.Vern7(), **exact))
    assert rel(g3, g4) < 1e-6


@pytest.mark.parametrize("sensealg", [None, pyude.InterpolatingAdjoint()], ids=repr)
def test_a_batch_shared_among_threads_gives_the_same_gradient(sensealg, monkeypatch):
    """Trajectories worth a thread are shared among one thread per core; the states and
    gradients are those of the trajectories solved one by one, bit for bit."""
    import threading

    from helpers import lv_batch

    from pyude.backends.numba import _gradient
    prob, u0, a = lv_batch(((1.0, 1.0), (0.5, 2.0), (2.0, 0.3), (1.5, 1.5), (0.7, 0.9)))
    ran_on = set()
    serial = _gradient._across_cores

    def watched(tasks):
        return serial([lambda task=task: (ran_on.add(threading.current_thread().name),
                                          task())[1] for task in tasks])

    monkeypatch.setattr(_gradient, "_across_cores", watched)
    results = []
    for after in (float("inf"), 0.0):      # never a thread; a thread whatever the work
        monkeypatch.setattr(_gradient, "_THREAD_AFTER_S", after)
        sol = numba_solve(prob, pyude.Tsit5(), sensealg, saveat=SAVEAT)
        results.append([sol.u, *torch.autograd.grad(loss_of(sol.u), [u0, a])])
    for one_by_one, threaded in zip(*results):
        assert torch.equal(one_by_one, threaded)
    import numba
    if numba.config.NUMBA_NUM_THREADS > 1:
        assert any(name.startswith("pyude-batch") for name in ran_on)


@pytest.mark.parametrize("sensealg", [None, pyude.InterpolatingAdjoint()], ids=repr)
def test_reverse_time_solves_differentiate(sensealg):
    saveat = [2.0, 1.5, 1.0, 0.0]

    def run(solve):
        prob, leaves = problem(1.5, tspan=(2.0, 0.0))
        sol = solve(prob)
        return torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss_of(sol.u), leaves)])

    g1 = run(lambda prob: numba_solve(prob, pyude.Tsit5(), sensealg, saveat=saveat,
                                      rtol=1e-10, atol=1e-10))
    g2 = run(lambda prob: pyude.solve(prob, pyude.Tsit5(), saveat=saveat, rtol=1e-10,
                                      atol=1e-10))
    assert rel(g1, g2) < (1e-12 if sensealg is None else 1e-7)


def test_a_float32_state_is_refused():
    prob = pyude.ODEProblem(pyude.problems.lotka_volterra,
                            torch.ones(2, dtype=torch.float32, requires_grad=True), (0.0, 1.0),
                            {"alpha": 1.5, "beta": 1.0, "gamma": 3.0, "delta": 1.0})
    with pytest.raises(GradientNotSupported, match="float64.*backend='native'"):
        numba_solve(prob, pyude.Tsit5(), saveat=[0.0, 1.0])


_FORK_AFTER_A_THREADED_BATCH = """
import multiprocessing, time
from pyude.backends.numba import _gradient

def batch():
    return _gradient._across_cores([lambda i=i: (time.sleep(0.002), i)[1] for i in range(5)])

if __name__ == "__main__":
    assert batch() == [0, 1, 2, 3, 4]
    with multiprocessing.get_context("fork").Pool(1) as pool:
        print(pool.apply_async(batch).get(timeout=60))
"""


def test_a_process_forked_after_a_threaded_batch_makes_its_own_threads():
    """A thread pool inherited through fork has no threads; a child's batch must not wait
    on it (process pools fork by default on Linux)."""
    from helpers import run_fresh
    assert run_fresh(_FORK_AFTER_A_THREADED_BATCH).strip() == "[0, 1, 2, 3, 4]"
