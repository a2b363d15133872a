"""Ensembles: the same bits on every strategy, results in trajectory order, per-trajectory
return codes, lost workers survived, reruns, reductions, summaries, and every bad argument
refused by its message before any work.

One two-worker Dask LocalCluster and one two-process pool serve the whole module."""

import concurrent.futures as cf
import math
import multiprocessing
import os
import signal
import sys
import threading
import time

import numpy as np
import pytest
import torch

import pyude
from pyude import (
    EnsembleDistributed,
    EnsembleError,
    EnsembleProblem,
    EnsembleSerial,
    EnsembleThreads,
    solve_ensemble,
)
from pyude.problems import lotka_volterra_problem

try:     # the workers receive this module's functions by value, without importing it
    import cloudpickle
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
except ImportError:
    pass

SAVEAT = [0.0, 0.5, 1.0, 2.0]
LV = lotka_volterra_problem(tspan=(0.0, 2.0))


def vary_lv(problem, i, repeat):
    """Trajectory i: u0 and alpha drawn from a generator seeded by i."""
    g = torch.Generator().manual_seed(i)
    u0 = 0.5 + torch.rand(2, generator=g, dtype=torch.float64)
    alpha = 1.5 * (1 + 0.2 * torch.rand((), generator=g, dtype=torch.float64))
    return problem.remake(u0=u0, p=dict(alpha=alpha, beta=1.0, gamma=3.0, delta=1.0))


LV_ENSEMBLE = EnsembleProblem(LV, prob_func=vary_lv)


def growth(u, p, t):
    (x,) = u
    return [p.a * x * x]


BLOWS_UP = (3, 12)


def vary_growth(problem, i, repeat):
    """u' = a u^2 from 1: decays for a = -1, blows up at t = 1 for a = +1."""
    return problem.remake(p=dict(a=1.0 if i in BLOWS_UP else -1.0 - 0.01 * i))


GROWTH = EnsembleProblem(pyude.ODEProblem(growth, [1.0], (0.0, 2.0), dict(a=-1.0)),
                         prob_func=vary_growth)


class KillOnce:
    """prob_func that kills the worker process solving `victim`, once (a flag file says
    it was done), and only in a worker process, never in the test's own."""

    def __init__(self, flag, victim):
        self.flag, self.victim = str(flag), victim

    def __call__(self, problem, i, repeat):
        if i == self.victim and multiprocessing.parent_process() is not None:
            try:
                os.close(os.open(self.flag, os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                pass
            else:
                time.sleep(0.2)           # let the other chunks get going
                os.kill(os.getpid(), signal.SIGKILL)
        return vary_lv(problem, i, repeat)


def states(sol):
    return torch.stack([s.u for s in sol])


def solve_lv(strategy, ensemble=LV_ENSEMBLE, trajectories=24, batch_size=6):
    return solve_ensemble(ensemble, pyude.Tsit5(), strategy, trajectories=trajectories,
                          batch_size=batch_size, saveat=SAVEAT, rtol=1e-8, atol=1e-8)


@pytest.fixture(scope="module")
def dask_client():
    dask = pytest.importorskip("dask")
    distributed = pytest.importorskip("dask.distributed")
    # Forked workers start with torch and pyude imported (0.4 s here); spawned ones import
    # them again, 10 s or more on two busy cores, and take 4 s to close.
    with dask.config.set({"distributed.worker.multiprocessing-method": "fork"}):
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                      dashboard_address=None) as cluster:
            with distributed.Client(cluster) as client:
                yield client


def pool(workers=2):
    """A process pool whose processes use one torch thread, as Dask's workers do."""
    return cf.ProcessPoolExecutor(workers, initializer=torch.set_num_threads, initargs=(1,))


@pytest.fixture(scope="module")
def process_pool():
    with pool() as executor:
        yield executor


@pytest.fixture(scope="module")
def serial_lv():
    return solve_lv(EnsembleSerial())


# --- the same numbers everywhere, in order ---------------------------------------------------

def test_every_strategy_gives_the_serial_bits_in_trajectory_order(serial_lv, dask_client,
                                                                  process_pool):
    expected = states(serial_lv)
    for i, sol in enumerate(serial_lv):     # order: trajectory i starts where prob_func put it
        assert torch.equal(sol.u[0], vary_lv(LV, i, 0).u0)
    assert serial_lv.retcodes == [pyude.ReturnCode.Success] * 24
    assert serial_lv.stats["chunks"] == 4
    ((where, work),) = serial_lv.stats["workers"].items()
    assert where.endswith(f":{os.getpid()}") and work["chunks"] == 4
    for strategy in (EnsembleThreads(), EnsembleDistributed(process_pool),
                     EnsembleDistributed(dask_client.get_executor())):
        sol = solve_lv(strategy)
        assert torch.equal(states(sol), expected), strategy
        assert sol.retcodes == serial_lv.retcodes


def test_default_chunks_one_per_worker_or_one_in_all(dask_client, process_pool):
    assert EnsembleDistributed(dask_client.get_executor()).default_batch_size(24) == 12
    assert EnsembleDistributed(process_pool).default_batch_size(25) == 13
    assert EnsembleDistributed(lambda: None).default_batch_size(24) == 6
    assert EnsembleSerial().default_batch_size(24) == EnsembleThreads().default_batch_size(24)
    sol = solve_ensemble(LV_ENSEMBLE, pyude.Tsit5(), EnsembleThreads(), trajectories=5,
                         saveat=[1.0])
    assert sol.stats["chunks"] == 1 and sol.stats["batch_size"] == 5


def test_a_chunk_is_one_stacked_solve_and_batch_size_one_solves_alone(serial_lv):
    stacked = pyude.solve(LV.remake(
        u0=torch.stack([vary_lv(LV, i, 0).u0 for i in range(6)]),
        p=dict(alpha=torch.stack([vary_lv(LV, i, 0).p.alpha for i in range(6)]), beta=1.0,
               gamma=3.0, delta=1.0)), pyude.Tsit5(), saveat=SAVEAT, rtol=1e-8, atol=1e-8)
    assert torch.equal(states(serial_lv)[:6], stacked.u.transpose(0, 1))
    alone = solve_lv(EnsembleSerial(), trajectories=3, batch_size=1)
    for i, sol in enumerate(alone):
        single = pyude.solve(vary_lv(LV, i, 0), pyude.Tsit5(), saveat=SAVEAT, rtol=1e-8,
                             atol=1e-8)
        assert torch.equal(sol.u, single.u)
    # each trajectory agrees with its own solve to the tolerances, not to the bit
    assert torch.allclose(states(serial_lv)[:3], states(alone), rtol=1e-6, atol=1e-7)


def test_chunks_finishing_in_reverse_order_come_back_in_trajectory_order(serial_lv):
    with _Scripted(delay=lambda start: 0.02 * (24 - start)) as executor:
        sol = solve_lv(EnsembleDistributed(executor))
    assert executor.finished == sorted(executor.finished, reverse=True)
    assert torch.equal(states(sol), states(serial_lv))


def vary_span(problem, i, repeat):
    return problem.remake(tspan=(0.0, 1.0 + 0.1 * i))


def test_trajectories_that_share_no_model_are_solved_one_by_one(dask_client):
    ens = EnsembleProblem(LV, prob_func=vary_span)
    serial = solve_ensemble(ens, pyude.Tsit5(), EnsembleSerial(), trajectories=6)
    for strategy in (EnsembleThreads(workers=2),
                     EnsembleDistributed(dask_client.get_executor())):
        other = solve_ensemble(ens, pyude.Tsit5(), strategy, trajectories=6)
        for i, (a, b) in enumerate(zip(serial, other)):
            assert torch.equal(a.u, b.u) and b.t[-1].item() == pytest.approx(1.0 + 0.1 * i)
            assert torch.equal(a(0.55), b(0.55))    # solved alone: dense output kept


def test_threads_call_julia_from_the_calling_thread_only(monkeypatch):
    real_solve, threads = pyude._solve.solve, set()

    def recording(problem, solver, **options):
        threads.add(threading.current_thread().name)
        return real_solve(problem, solver, **dict(options, backend="native"))

    monkeypatch.setattr(pyude._solve, "solve", recording)
    ens = EnsembleProblem(LV, prob_func=vary_span)          # not stackable: one by one
    solve_ensemble(ens, pyude.Tsit5(), EnsembleThreads(workers=2), trajectories=4)
    assert threads and all(t.startswith("pyude-ensemble") for t in threads)
    threads.clear()
    solve_ensemble(ens, pyude.Tsit5(), EnsembleThreads(workers=2), trajectories=4,
                   backend="julia")
    assert threads == {threading.current_thread().name}


def test_threads_run_chunks_concurrently_and_fold_them_in_order(serial_lv):
    sol = solve_lv(EnsembleThreads(workers=3))                # 4 chunks of 6
    assert torch.equal(states(sol), states(serial_lv))
    ens = EnsembleProblem(RERUN.problem, prob_func=faster_on_rerun,
                          output_func=lambda sol, i: (sol.u[-1, 0] * (i + 1), False),
                          reduction=add_ends, u_init=0.0)
    sol = solve_ensemble(ens, pyude.Tsit5(), EnsembleThreads(workers=2), trajectories=20,
                         batch_size=4, saveat=[1.0], rtol=1e-10, atol=1e-10)
    assert sol.converged and sol.trajectories == 8
    assert sol.u == pytest.approx(math.exp(-0.5) * sum(range(1, 9)), rel=1e-8)


# --- failures -----------------------------------------------------------------------------

def test_failed_trajectories_return_their_codes_and_fail_nothing_else(dask_client):
    sols = [solve_ensemble(GROWTH, pyude.Tsit5(), strategy, trajectories=16, batch_size=8,
                           saveat=[0.0, 0.5, 2.0])
            for strategy in (EnsembleSerial(), EnsembleDistributed(dask_client.get_executor()))]
    for sol in sols:
        assert sol.failed == list(BLOWS_UP) and not sol.success
        assert all(sol.retcodes[i] in (pyude.ReturnCode.Unstable, pyude.ReturnCode.MaxIters,
                                       pyude.ReturnCode.DtLessThanMin) for i in BLOWS_UP)
        for i, s in enumerate(sol):
            if i not in BLOWS_UP:     # exact solution 1 / (1 - a t)
                a = -1.0 - 0.01 * i
                assert s.u[-1, 0].item() == pytest.approx(1 / (1 - 2 * a), rel=1e-3)
        with pytest.raises(pyude.SolverError, match=r"2 of 16 trajectories failed .*3, 12"):
            sol.raise_for_status()
    assert all(torch.equal(a.u, b.u) for a, b in zip(*sols))


def test_a_dask_worker_killed_mid_run_loses_nothing(serial_lv, dask_client, tmp_path):
    ens = EnsembleProblem(LV, prob_func=KillOnce(tmp_path / "killed", victim=7))
    before = set(dask_client.run(os.getpid).values())
    sol = solve_lv(EnsembleDistributed(dask_client.get_executor()), ensemble=ens)
    dask_client.wait_for_workers(2, timeout=60)        # the nanny restarts the killed one
    assert len(before - set(dask_client.run(os.getpid).values())) == 1
    assert torch.equal(states(sol), states(serial_lv))
    assert sol.retcodes == serial_lv.retcodes


def test_a_broken_process_pool_is_replaced_and_its_chunks_resubmitted(serial_lv, tmp_path):
    ens = EnsembleProblem(LV, prob_func=KillOnce(tmp_path / "killed", victim=7))
    sol = solve_lv(EnsembleDistributed(pool), ensemble=ens)
    assert (tmp_path / "killed").exists()
    assert sol.stats["executors_replaced"] == 1 and sol.stats["resubmitted"] >= 1
    assert torch.equal(states(sol), states(serial_lv))


def test_a_broken_pool_given_as_an_instance_is_reported(tmp_path):
    ens = EnsembleProblem(LV, prob_func=KillOnce(tmp_path / "killed", victim=0))
    with pool(1) as executor:
        with pytest.raises(EnsembleError, match=r"takes no more work\. Pass a function that "
                                                r"makes the executor"):
            solve_lv(EnsembleDistributed(executor), ensemble=ens)


def test_lost_workers_are_retried_a_bounded_number_of_times(serial_lv):
    with _Scripted(lose={0: 1, 6: 2}) as executor:     # chunk at 0 lost once, at 6 twice
        sol = solve_lv(EnsembleDistributed(executor, retries=2))
    assert sol.stats["resubmitted"] == 3
    assert torch.equal(states(sol), states(serial_lv))
    with _Scripted(lose={12: 99}) as executor:
        with pytest.raises(EnsembleError, match=r"trajectories 12 to 17 lost its worker 3 "
                                                r"times \(KilledWorker.*retries=2"):
            solve_lv(EnsembleDistributed(executor, retries=2))


def test_an_error_in_the_model_is_raised_with_its_trajectories():
    def bad(problem, i, repeat):
        if i == 9:
            raise ZeroDivisionError("no")
        return problem

    with _Scripted() as executor:
        with pytest.raises(ZeroDivisionError) as info:
            solve_ensemble(EnsembleProblem(LV, prob_func=bad), pyude.Tsit5(),
                           EnsembleDistributed(executor), trajectories=12, batch_size=4)
    assert "trajectories 8 to 11" in str(getattr(info.value, "__notes__", ""))


# --- output_func, reruns, reductions -----------------------------------------------------

def decay(u, p, t):
    (x,) = u
    return [-p.k * x]


def faster_on_rerun(problem, i, repeat):
    return problem.remake(p=dict(k=0.5 * (repeat + 1)))


def keep_end_rerun_odd(sol, i):
    end = sol.u[-1, 0]
    return end, bool(i % 2 == 1 and end > 0.5)


RERUN = EnsembleProblem(pyude.ODEProblem(decay, [1.0], (0.0, 1.0), dict(k=0.5)),
                        prob_func=faster_on_rerun, output_func=keep_end_rerun_odd)


def test_output_func_keeps_values_and_reruns_where_asked(dask_client):
    for strategy in (EnsembleSerial(), EnsembleDistributed(dask_client.get_executor())):
        sol = solve_ensemble(RERUN, pyude.Tsit5(), strategy, trajectories=10, batch_size=4,
                             saveat=[1.0], rtol=1e-10, atol=1e-10)
        ends = [float(v) for v in sol]
        assert ends == pytest.approx([math.exp(-0.5 if i % 2 == 0 else -1.0)
                                      for i in range(10)], rel=1e-8)
        assert sol.stats["reruns"] == 5
        summary = sol.summary()
        assert summary.t is None and summary.mean == pytest.approx(np.mean(ends))


def add_ends(u, batch, I):
    return u + sum(float(v) for v in batch), I.stop >= 8


def test_reduction_folds_batches_in_order_and_stops_when_converged():
    ens = EnsembleProblem(RERUN.problem, prob_func=faster_on_rerun,
                          output_func=lambda sol, i: (sol.u[-1, 0] * (i + 1), False),
                          reduction=add_ends, u_init=0.0)
    with _Scripted(delay=lambda start: 0.01 * (20 - start)) as executor:
        for strategy in (EnsembleSerial(), EnsembleDistributed(executor)):
            sol = solve_ensemble(ens, pyude.Tsit5(), strategy, trajectories=20, batch_size=4,
                                 saveat=[1.0], rtol=1e-10, atol=1e-10)
            assert sol.converged and sol.trajectories == 8
            assert sol.u == pytest.approx(math.exp(-0.5) * sum(range(1, 9)), rel=1e-8)
            with pytest.raises(TypeError, match="folded by its `reduction`"):
                sol[0]


# --- summaries, plots, dense output, gradients -------------------------------------------

def test_summary_gives_mean_variance_and_quantiles_at_the_saved_times(serial_lv):
    s = serial_lv.summary(quantiles=(0.1, 0.9))
    data = states(serial_lv).numpy()
    assert np.array_equal(s.t, np.array(SAVEAT)) and s.n == 24 and s.excluded == ()
    assert s.mean == pytest.approx(data.mean(axis=0))
    assert s.var == pytest.approx(data.var(axis=0, ddof=1))
    assert s.qlow == pytest.approx(np.quantile(data, 0.1, axis=0))
    assert s.median == pytest.approx(np.median(data, axis=0))
    with pytest.raises(ValueError, match="quantiles must be two levels"):
        serial_lv.summary(quantiles=(0.9, 0.1))


def test_summary_leaves_out_failed_trajectories_and_needs_common_times():
    sol = solve_ensemble(GROWTH, pyude.Tsit5(), EnsembleSerial(), trajectories=16,
                         saveat=[0.0, 2.0])
    assert sol.summary().n == 14 and sol.summary().excluded == BLOWS_UP
    adaptive = solve_ensemble(GROWTH, pyude.Tsit5(), EnsembleSerial(), trajectories=4,
                              batch_size=1)
    with pytest.raises(ValueError, match="saved at different times.*pass `saveat=`"):
        adaptive.summary()


def test_plot_draws_quantile_bands(serial_lv):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    ax = serial_lv.plot(labels=["prey", "predator"])
    assert len(ax.collections) == 2 and len(ax.lines) == 2
    assert "prey 5%-95%" in [t.get_text() for t in ax.get_legend().get_texts()]
    matplotlib.pyplot.close("all")


def test_a_stacked_trajectory_says_how_to_get_dense_output(serial_lv):
    with pytest.raises(ValueError, match="pass `saveat=`.*or `batch_size=1`"):
        serial_lv[0](0.3)


def test_a_loss_over_an_ensemble_backpropagates_through_the_stacked_solve():
    alpha = torch.tensor(1.5, dtype=torch.float64, requires_grad=True)

    def experiment(problem, i, repeat):
        return problem.remake(u0=[1.0 + 0.1 * i, 1.0],
                              p=dict(alpha=alpha * (1 + 0.05 * i), beta=1.0, gamma=3.0,
                                     delta=1.0))

    ens = EnsembleProblem(LV, prob_func=experiment)
    sol = solve_ensemble(ens, pyude.Tsit5(), EnsembleThreads(), trajectories=5,
                         saveat=[2.0], rtol=1e-8, atol=1e-8)
    (grad,) = torch.autograd.grad(sum(s.u[-1].sum() for s in sol), alpha)
    eps = 1e-6
    ends = []
    for a in (1.5 + eps, 1.5 - eps):
        with torch.no_grad():
            alpha.fill_(a)
            ends.append(sum(float(s.u[-1].sum()) for s in solve_ensemble(
                ens, pyude.Tsit5(), EnsembleSerial(), trajectories=5, saveat=[2.0],
                rtol=1e-12, atol=1e-12)))
    assert grad.item() == pytest.approx((ends[0] - ends[1]) / (2 * eps), rel=1e-5)
    with pytest.raises(ValueError, match="gradients do not come back from other processes"):
        solve_ensemble(EnsembleProblem(LV.remake(p=dict(alpha=alpha, beta=1.0, gamma=3.0,
                                                        delta=1.0))),
                       pyude.Tsit5(), EnsembleDistributed(_Scripted()), trajectories=2)


# --- what cannot be sent, and bad arguments ----------------------------------------------

class LockedModel:
    def __init__(self):
        self.lock = threading.Lock()

    def __call__(self, u, p, t):
        x, y = u
        return [x, -y]


def test_an_unpicklable_model_is_named_before_any_work():
    executor = _Scripted()
    with pytest.raises(TypeError, match=r"cannot be sent to the workers: problem\.f\.lock "
                                        r"\(<unlocked _thread\.lock.*cannot be pickled.*"
                                        r"use a module-level function instead of a "
                                        r"lambda or a closure"):
        solve_ensemble(EnsembleProblem(pyude.ODEProblem(LockedModel(), [1.0, 1.0], (0, 1))),
                       pyude.Tsit5(), EnsembleDistributed(executor), trajectories=4)
    lock = threading.Lock()

    def closure(problem, i, repeat):
        with lock:
            return problem

    with pytest.raises(TypeError, match=r"prob_func \(closure variable `lock`\)"):
        solve_ensemble(EnsembleProblem(LV, prob_func=closure), pyude.Tsit5(),
                       EnsembleDistributed(executor), trajectories=4)
    assert executor.submitted == 0
    executor.shutdown()


def test_without_cloudpickle_a_lambda_is_named_with_the_fix(monkeypatch):
    monkeypatch.setitem(sys.modules, "cloudpickle", None)       # import fails
    executor = _Scripted()
    with pytest.raises(TypeError, match=r"prob_func \(<function .*<lambda>.*Without "
                                        r"cloudpickle installed, lambdas.*define them at "
                                        r"module level, or `pip install cloudpickle`"):
        solve_ensemble(EnsembleProblem(LV, prob_func=lambda problem, i, repeat: problem),
                       pyude.Tsit5(), EnsembleDistributed(executor), trajectories=4)
    assert executor.submitted == 0
    executor.shutdown()


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(trajectories=0), ValueError, r"trajectories must be a positive whole number.*got 0"),
    (dict(trajectories=-3), ValueError, r"trajectories must be a positive.*got -3"),
    (dict(trajectories=2.5), ValueError, r"trajectories must be a positive.*got 2\.5"),
    (dict(trajectories=True), ValueError, r"trajectories must be a positive.*got True"),
    (dict(trajectories=4, batch_size=0), ValueError, r"batch_size must be a positive whole"),
    (dict(trajectories=4, batch_size=-1), ValueError, r"batch_size must be a positive whole"),
    (dict(trajectories=4, rtool=1e-3), TypeError,
     r"solve_ensemble\(\) got unknown keyword argument\(s\) `rtool` \(did you mean `rtol`\?\)"),
    (dict(trajectories=4, throw=True), TypeError,
     r"does not take `throw`: a failed trajectory never fails the ensemble"),
])
def test_bad_arguments_are_refused_by_their_messages(kwargs, error, match):
    with pytest.raises(error, match=match):
        solve_ensemble(LV_ENSEMBLE, pyude.Tsit5(), EnsembleSerial(), **kwargs)


def test_trajectories_is_required():
    with pytest.raises(TypeError, match="trajectories"):
        solve_ensemble(LV_ENSEMBLE, pyude.Tsit5(), EnsembleSerial())


@pytest.mark.parametrize("strategy, match", [
    (EnsembleSerial, r"pass a strategy instance, `EnsembleSerial\(\)`, not the class"),
    ("threads", r"strategy must be EnsembleSerial\(\), EnsembleThreads\(\) or "
                r"EnsembleDistributed\(executor\); got 'threads'"),
    (cf.ThreadPoolExecutor(1), r"wrap the executor in a strategy: "
                               r"`EnsembleDistributed\(threadpoolexecutor\)`"),
])
def test_a_strategy_that_is_not_one_is_refused(strategy, match):
    with pytest.raises(TypeError, match=match):
        solve_ensemble(LV_ENSEMBLE, pyude.Tsit5(), strategy, trajectories=2)


def test_other_bad_inputs_are_refused_by_their_messages():
    with pytest.raises(TypeError, match="needs a pyude.EnsembleProblem; wrap the problem"):
        solve_ensemble(LV, pyude.Tsit5(), trajectories=2)
    with pytest.raises(TypeError, match=r"the strategy is the third argument"):
        solve_ensemble(LV_ENSEMBLE, EnsembleSerial(), trajectories=2)
    with pytest.raises(TypeError, match=r"pass a solver instance, `Tsit5\(\)`"):
        solve_ensemble(LV_ENSEMBLE, pyude.Tsit5, trajectories=2)
    with pytest.raises(TypeError, match="needs a pyude.ODEProblem as its base problem"):
        EnsembleProblem(LV_ENSEMBLE)
    with pytest.raises(TypeError, match="prob_func must be a function or None"):
        EnsembleProblem(LV, prob_func=3)
    with pytest.raises(ValueError, match="u_init is the starting value of a reduction"):
        EnsembleProblem(LV, u_init=0.0)
    with pytest.raises(ValueError, match="workers must be a positive number of threads"):
        EnsembleThreads(workers=0)
    with pytest.raises(TypeError, match="EnsembleDistributed needs a concurrent.futures"):
        EnsembleDistributed("tcp://scheduler:8786")

    class Client:
        def get_executor(self):
            ...
    with pytest.raises(TypeError, match=r"pass `EnsembleDistributed\(client.get_executor"
                                        r"\(\)\)`, not the Client itself"):
        EnsembleDistributed(Client())
    with pytest.raises(ValueError, match="retries must be a whole number >= 0"):
        EnsembleDistributed(cf.ThreadPoolExecutor, retries=-1)


@pytest.mark.parametrize("ens, match", [
    (EnsembleProblem(LV, prob_func=lambda prob, i, repeat: None),
     r"prob_func returned NoneType for trajectory 0; it must return a pyude.ODEProblem"),
    (EnsembleProblem(LV, output_func=lambda sol, i: sol),
     r"output_func must return a pair \(value, rerun\); for trajectory 0 it returned "
     r"TrajectorySolution"),
    (EnsembleProblem(LV, reduction=lambda u, batch, I: u),
     r"reduction must return a pair \(u, converged\); for trajectories 0 to 1 it returned"),
])
def test_user_functions_returning_the_wrong_thing_are_named(ens, match):
    with pytest.raises(TypeError, match=match):
        solve_ensemble(ens, pyude.Tsit5(), EnsembleSerial(), trajectories=2, saveat=[1.0])


# --- a scripted executor: chunks that finish late, or whose worker is lost ----------------

class KilledWorker(Exception):
    """Named like Dask's: how a distributed executor says a worker was lost."""


class _Scripted(cf.ThreadPoolExecutor):
    """Runs each chunk in a thread after `delay(start)` seconds; the chunk at `start`
    loses its worker the first `lose[start]` times it is submitted."""

    def __init__(self, delay=lambda start: 0.0, lose=None):
        super().__init__(max_workers=8)
        self.delay, self.lose = delay, dict(lose or {})
        self.submitted, self.finished = 0, []

    def submit(self, fn, payload, start, stop, token):
        self.submitted += 1
        if self.lose.get(start, 0) > 0:
            self.lose[start] -= 1
            future = cf.Future()
            future.set_exception(KilledWorker(f"worker running chunk {start} died"))
            return future

        def later():
            time.sleep(self.delay(start))
            out = fn(payload, start, stop, token)
            self.finished.append(start)
            return out
        return super().submit(later)


# --- on demand: a larger stiff sweep -----------------------------------------------------

def vary_rober(problem, i, repeat):
    g = torch.Generator().manual_seed(i)
    f = 2.0 ** (2 * torch.rand(3, generator=g, dtype=torch.float64) - 1)
    return problem.remake(p=dict(k1=0.04 * f[0], k2=3e7 * f[1], k3=1e4 * f[2]))


@pytest.mark.slow
def test_a_stiff_sweep_survives_a_killed_worker_with_the_serial_bits(dask_client, tmp_path):
    from pyude.problems import rober_problem
    options = dict(trajectories=2000, batch_size=250, saveat=[1.0, 1e3, 1e5], rtol=1e-6,
                   atol=1e-10)
    serial = solve_ensemble(EnsembleProblem(rober_problem(), prob_func=vary_rober),
                            pyude.Rodas5P(), EnsembleSerial(), **options)

    def killing(problem, i, repeat):
        KillOnce(tmp_path / "killed", victim=1100)(problem, i, repeat)
        return vary_rober(problem, i, repeat)

    dist = solve_ensemble(EnsembleProblem(rober_problem(), prob_func=killing),
                          pyude.Rodas5P(), EnsembleDistributed(dask_client.get_executor()),
                          **options)
    assert (tmp_path / "killed").exists() and serial.success and dist.success
    assert torch.equal(states(dist), states(serial))
    mass = states(serial).sum(-1)                 # ROBER conserves y1 + y2 + y3 = 1
    assert torch.allclose(mass, torch.ones_like(mass), atol=1e-6)
