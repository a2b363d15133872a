"""The numba backend against the torch backend over the solver registry: the same steps,
counters and answers, the registry's orders, dense output, options, return codes, batches
and refusals. Every test here reuses the one compiled kernel."""

import re

import numpy as np
import pytest
import torch

import pyude
from helpers import FIXED_STEP_NEWTON, SOLVERS, ids, observed_order
from helpers import numba_solve as solve_problem
from problems import LOTKA_VOLTERRA_T10, oscillator_exact, oscillator_problem
from pyude import ops
from pyude.backends.numba import NotCompilableError, NumbaBackend
from pyude.problems import lotka_volterra_problem


# a composite of each kind next to the registry's single methods
SWITCHES = [pyude.AutoTsit5(pyude.Rosenbrock23()), pyude.AutoVern7(pyude.Rodas5P()),
            pyude.AutoTsit5(pyude.KenCarp4())]
ADAPTIVE_SOLVERS = [e.solver for e in SOLVERS if e.solver.adaptive] + SWITCHES


def _close_steps(a, b):
    """Same accepted and rejected steps and the same answers, up to round-off amplified by
    the error estimate (a difference of nearly equal numbers)."""
    assert (a.stats.naccept, a.stats.nreject) == (b.stats.naccept, b.stats.nreject)
    assert (a.stats.njacs, a.stats.nw, a.stats.nsolve) == (b.stats.njacs, b.stats.nw,
                                                           b.stats.nsolve)
    np.testing.assert_allclose(a.t.numpy(), b.t.numpy(), rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(a.u.numpy(), b.u.numpy(), rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("solver", ADAPTIVE_SOLVERS, ids=repr)
def test_adaptive_solve_takes_the_torch_steps(solver):
    prob = lotka_volterra_problem()
    a = solve_problem(prob, solver, rtol=1e-5, atol=1e-7)
    b = pyude.solve(prob, solver, rtol=1e-5, atol=1e-7)
    _close_steps(a, b)
    if isinstance(solver, pyude.solvers.AbstractERK):
        assert a.stats.nf == b.stats.nf      # the stiff solvers' torch Jacobian also calls f
    times = np.linspace(0.05, 9.95, 23)
    np.testing.assert_allclose(a(times).numpy(), b(times).numpy(), rtol=1e-7, atol=1e-9)
    assert (a.methods is None) == (b.methods is None)
    if a.methods is not None:
        assert [repr(m) for m in a.methods] == [repr(m) for m in b.methods]


@pytest.mark.parametrize("solver", ADAPTIVE_SOLVERS, ids=repr)
def test_saveat_and_tstops_and_dtmax_as_torch(solver):
    prob = lotka_volterra_problem()
    kw = dict(rtol=1e-5, atol=1e-7, saveat=[0.0, 0.3, 2.5, 2.5, 7.0, 10.0],
              tstops=[2.5, 4.0], dtmax=0.7)
    a, b = solve_problem(prob, solver, **kw), pyude.solve(prob, solver, **kw)
    _close_steps(a, b)
    assert a.t.tolist() == kw["saveat"]


def _convergence_problem(name):
    if name == "oscillator":
        return oscillator_problem(), oscillator_exact(20.0)
    return lotka_volterra_problem(), LOTKA_VOLTERRA_T10


@pytest.mark.parametrize("entry", SOLVERS, ids=ids(SOLVERS))
def test_convergence_order(entry):
    prob, exact = _convergence_problem(entry.problem)
    errors = []
    for k in entry.convergence_k:
        sol = solve_problem(prob, entry.solver, dt=2.0**-k, adaptive=False,
                            **FIXED_STEP_NEWTON)
        errors.append(np.abs(sol.u[-1].numpy() - exact).max())
    assert observed_order(errors) == pytest.approx(entry.order, abs=0.2)


@pytest.mark.parametrize("entry", SOLVERS, ids=ids(SOLVERS))
def test_dense_output_order(entry):
    """Between steps the interpolant converges at min(order, dense order + 1), saved in the
    kernel (saveat) and evaluated after (sol(t)) alike."""
    prob = oscillator_problem(tspan=(0.0, 4.0))
    expected = min(entry.order, entry.solver.dense_order + 1)
    ks = entry.dense_k or ([k + 2 for k in entry.convergence_k] if entry.order <= 2
                           else entry.convergence_k)
    errors, saved = [], []
    for k in ks:
        dt = 2.0**-k
        mids = np.arange(0.37 * dt, 4.0, 3.1 * dt)
        exact = np.stack([oscillator_exact(t) for t in mids])
        sol = solve_problem(prob, entry.solver, dt=dt, adaptive=False, **FIXED_STEP_NEWTON)
        errors.append(np.abs(sol(mids).numpy() - exact).max())
        at = solve_problem(prob, entry.solver, dt=dt, adaptive=False, saveat=mids,
                           **FIXED_STEP_NEWTON)
        saved.append(np.abs(at.u.numpy() - exact).max())
    assert observed_order(errors) == pytest.approx(expected, abs=0.3)
    assert observed_order(saved) == pytest.approx(expected, abs=0.3)


@pytest.mark.parametrize("controller", [pyude.PIController(qmax=5.0, gamma=0.8),
                                        pyude.PredictiveController()], ids=repr)
def test_controllers_as_torch(controller):
    prob = lotka_volterra_problem()
    for solver in (pyude.Tsit5(), pyude.Rodas5P()):
        a = solve_problem(prob, solver, rtol=1e-6, controller=controller)
        b = pyude.solve(prob, solver, rtol=1e-6, controller=controller)
        _close_steps(a, b)


def test_backwards_in_time_as_torch():
    prob = lotka_volterra_problem(tspan=(10.0, 0.0))
    a = solve_problem(prob, pyude.Tsit5(), rtol=1e-6, saveat=[10.0, 5.0, 0.0])
    b = pyude.solve(prob, pyude.Tsit5(), rtol=1e-6, saveat=[10.0, 5.0, 0.0])
    _close_steps(a, b)


def _blow_up(u, p, t):
    (x,) = u
    return [p.a * x**2]


def _blow_up_problem(a=1.0):
    return pyude.ODEProblem(_blow_up, [1.0], (0.0, 2.0), dict(a=a))


@pytest.mark.parametrize("a,kw,code", [
    (1.0, dict(solver=pyude.Tsit5(), maxiters=5), pyude.ReturnCode.MaxIters),
    (1.0, dict(solver=pyude.Tsit5(), dtmin=1e-3), pyude.ReturnCode.DtLessThanMin),
    (1e200, dict(solver=pyude.Euler(), dt=0.5), pyude.ReturnCode.Unstable),
    (1e200, dict(solver=pyude.Tsit5()), pyude.ReturnCode.Unstable),
    (1.0, dict(solver=pyude.Tsit5()), pyude.ReturnCode.DtLessThanMin),
    (1.0, dict(solver=pyude.Rodas5P()), pyude.ReturnCode.DtLessThanMin),
])
def test_return_codes_and_messages_as_torch(a, kw, code):
    prob = _blow_up_problem(a)
    a = solve_problem(prob, throw=False, **kw)
    b = pyude.solve(prob, throw=False, **kw)
    assert a.retcode == b.retcode == code
    numbers = r"-?\d[\d.e+-]*"     # the same words; the numbers up to round-off
    assert re.sub(numbers, "#", a.message) == re.sub(numbers, "#", b.message)
    assert a.message.endswith(code.value)
    with pytest.raises(pyude.SolverError, match=code.name):
        solve_problem(prob, **kw)


@pytest.mark.parametrize("solver", [pyude.Tsit5(), pyude.Rodas5P(), pyude.KenCarp4()],
                         ids=repr)
def test_tstops_are_stepped_onto_exactly(solver):
    sol = solve_problem(lotka_volterra_problem(), solver, rtol=1e-5,
                        tstops=[1.0 / 3.0, 2.7])
    assert {1.0 / 3.0, 2.7} <= set(sol.t.tolist())
    assert sol.t[-1].item() == 10.0
    assert 1.0 / 3.0 in sol.dense.starts


def test_near_continues_the_last_step_a_little():
    sol = solve_problem(lotka_volterra_problem(), pyude.Tsit5(), rtol=1e-6)
    inside = sol.dense.near(10.0)
    assert torch.allclose(inside, sol.u[-1], rtol=1e-12, atol=1e-12)
    assert torch.isfinite(sol.dense.near(10.0 + 1e-6)).all()


def test_outside_the_span_is_refused_as_torch():
    sol = solve_problem(lotka_volterra_problem(), pyude.Tsit5())
    with pytest.raises(ValueError, match="outside the solved span"):
        sol(10.5)
    assert sol.dense.span == (0.0, 10.0)


def test_batch_with_one_failing_member():
    """Each trajectory has its own steps and return code; the healthy ones equal their single
    solves, and the batch's retcode is the worst."""
    prob = pyude.ODEProblem(_blow_up, torch.ones(3, 1, dtype=torch.float64), (0.0, 1.0),
                            dict(a=torch.tensor([0.1, 0.5, 2.0], dtype=torch.float64)))
    times = np.linspace(0.0, 1.0, 11)
    sol = solve_problem(prob, pyude.Tsit5(), saveat=times, throw=False)
    assert sol.u.shape == (11, 3, 1)
    assert [c.name for c in sol.retcodes] == ["Success", "Success", "DtLessThanMin"]
    assert sol.retcode == pyude.ReturnCode.DtLessThanMin
    assert "trajectory 2" in sol.message
    for b, a in enumerate([0.1, 0.5]):
        single = solve_problem(_blow_up_problem(a).remake(tspan=(0.0, 1.0)), pyude.Tsit5(),
                               saveat=times)
        assert torch.equal(sol.u[:, b], single.u)
    assert torch.isnan(sol.u[-1, 2]).all()


def test_batch_of_stiff_parameter_sets_matches_single_solves():
    prob = pyude.problems.rober_problem(tspan=(0.0, 100.0))
    k1 = torch.tensor([[0.04, 0.05], [0.03, 0.06]], dtype=torch.float64)
    batch = prob.remake(u0=torch.tensor([1.0, 0, 0], dtype=torch.float64).expand(2, 2, 3).clone(),
                        p=dict(k1=k1, k2=3e7, k3=1e4))
    sol = solve_problem(batch, pyude.Rodas5P(), rtol=1e-6, atol=1e-10, saveat=[1.0, 100.0])
    one = solve_problem(prob.remake(p=dict(k1=0.06, k2=3e7, k3=1e4)), pyude.Rodas5P(),
                        rtol=1e-6, atol=1e-10, saveat=[1.0, 100.0])
    assert torch.equal(sol.u[:, 1, 1], one.u)
    assert sol.retcodes.shape == (2, 2)


def test_batch_needs_saveat_and_keeps_no_dense_output():
    prob = lotka_volterra_problem().remake(u0=torch.ones(2, 2, dtype=torch.float64))
    with pytest.raises(NotCompilableError, match="pass `saveat`"):
        solve_problem(prob, pyude.Tsit5())
    with pytest.raises(NotCompilableError, match="no dense output"):
        solve_problem(prob, pyude.Tsit5(), saveat=[1.0], dense=True)


def _branching(u, p, t):
    x, y = u
    return [y if x > 0 else -y, -x]


class _Net(torch.nn.Module):
    def forward(self, u, p, t):
        return u


@pytest.mark.parametrize("make,match", [
    (lambda: lotka_volterra_problem().remake(u0=torch.ones(2, dtype=torch.float32)),
     "float64 only"),
    (lambda: pyude.ODEProblem(_branching, [1.0, 0.0], (0.0, 1.0)), "does not trace"),
    (lambda: pyude.ODEProblem(_Net(), [1.0, 0.0], (0.0, 1.0)), "torch.nn.Module"),
])
def test_refusals_name_what_why_and_the_fix(make, match):
    with pytest.raises(NotCompilableError, match=match):
        solve_problem(make(), pyude.Tsit5())
    assert NumbaBackend().reason_not_compilable(make(), pyude.Tsit5()) is not None


def test_a_sensitivity_the_backend_lacks_names_the_native_backend():
    u0 = torch.ones(2, dtype=torch.float64, requires_grad=True)
    prob = lotka_volterra_problem().remake(u0=u0)
    reason = NumbaBackend().reason_not_compilable(prob, pyude.Tsit5(), None,
                                                  pyude.BacksolveAdjoint())
    assert "BacksolveAdjoint()" in reason and "backend='native'" in reason
    with pytest.raises(NotCompilableError, match="BacksolveAdjoint"):
        solve_problem(prob, pyude.Tsit5(), saveat=[1.0], sensealg=pyude.BacksolveAdjoint())


def test_a_compilable_problem_has_no_reason():
    assert NumbaBackend().reason_not_compilable(lotka_volterra_problem(), pyude.Tsit5()) \
        is None
    assert NumbaBackend.name == "numba"


def test_model_with_time_and_library_functions_as_torch():
    def forced(u, p, t):
        x, y = u
        return [y, -p[0] * ops.sin(x) + ops.tanh(ops.cos(t)) + 0.1 * ops.sigmoid(y)]
    prob = pyude.ODEProblem(forced, [0.5, 0.0], (0.0, 5.0), [2.0])
    for solver in (pyude.Tsit5(), pyude.Rodas5P()):
        a = solve_problem(prob, solver, rtol=1e-7)
        b = pyude.solve(prob, solver, rtol=1e-7)
        _close_steps(a, b)


def test_per_component_atol_and_saveat_spacing_as_torch():
    prob = lotka_volterra_problem()
    kw = dict(rtol=1e-6, atol=torch.tensor([1e-9, 1e-7], dtype=torch.float64), saveat=0.25)
    a, b = solve_problem(prob, pyude.Tsit5(), **kw), pyude.solve(prob, pyude.Tsit5(), **kw)
    _close_steps(a, b)
    assert len(a) == 41


def test_unknown_keyword_is_refused():
    with pytest.raises(TypeError, match="reltol"):
        solve_problem(lotka_volterra_problem(), pyude.Tsit5(), reltol=1e-6)


_FORK_AFTER_A_BATCH = """
import multiprocessing, threading
import numba, torch
import pyude
from pyude.problems import lotka_volterra_problem

def solve(_=None):
    prob = lotka_volterra_problem().remake(u0=torch.ones(4, 2, dtype=torch.float64))
    return pyude.solve(prob, pyude.Tsit5(), backend="numba", saveat=[1.0]).success

if __name__ == "__main__":
    assert solve()
    assert numba.threading_layer() != "omp", numba.threading_layer()
    with multiprocessing.get_context("fork").Pool(1) as pool:
        assert pool.map(len, [[0]], chunksize=1) == [1]
    results = []
    threads = [threading.Thread(target=lambda: results.append(solve())) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(results)
"""


def test_a_process_forked_after_a_batch_survives_and_threads_may_launch_batches():
    """The batch kernel's threads must not poison a fork (a process pool, Dask workers):
    GNU OpenMP kills such a child. Batches launched from several threads at once run."""
    from helpers import run_fresh
    assert run_fresh(_FORK_AFTER_A_BATCH).strip() == "[True, True, True]"
