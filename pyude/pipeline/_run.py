"""`run`: the whole pipeline, from data to the report folder."""

from __future__ import annotations

import json
import math
import platform
import time
from pathlib import Path

import sympy
import torch
from torch import nn

from .._errors import SolverError
from .._modules import UDE
from .._problem import ODEProblem
from .._solve import solve
from ..discovery import discover, discovered_model, refit
from ..solvers import Tsit5, Vern7
from ..train import check_data, fit
from ._candidates import shortlist
from ._data import make_data
from ._problems import DiscoveryProblem, load_problem
from ._report import _failure_report, _plots, _report, _results
from ._selection import select_structure, structure_recovered


def make_network(n_in: int, n_out: int, seed: int) -> nn.Module:
    """The UDE paper's network: 2-5-5-5-2 with RBF activations (inputs and outputs sized to
    the problem)."""
    from ..nn import RBF
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(n_in, 5), RBF(), nn.Linear(5, 5), RBF(), nn.Linear(5, 5),
                         RBF(), nn.Linear(5, n_out)).double()


def _relative_l2(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.linalg.norm(a - b) / torch.linalg.norm(b))


def _extrapolate(u0, f, p, t_end):
    """The model's prediction from its own initial state (the truth's from the true one;
    a refit model's from the state it estimated, as a user would predict)."""
    times = torch.linspace(0.0, t_end, 401, dtype=torch.float64)
    prob = ODEProblem(f, u0, (0.0, t_end), p)
    sol = solve(prob, Vern7(), saveat=times, rtol=1e-9, atol=1e-9, throw=False,
                maxiters=20_000)
    return times, sol


class PipelineError(RuntimeError):
    """A stage of the pipeline failed; the report folder says which and why."""


def run(problem: str | DiscoveryProblem = "lotka_volterra", *, noise: float = 0.05,
        seed: int = 0, out: str | Path = "pyude-report", t=None, data=None,
        adam_iters: int = 100, lbfgs_iters: int = 20, collocation_iters: int = 1000,
        adam_lr: float = 1e-3, regression: str = "sindy", refit_iters: int = 50,
        per_target: int = 4, parsimony: float = 6.0, progress: bool = True,
        plots: bool = True, backend: str = "native") -> dict:
    """Run the whole pipeline and write the report folder. With `t` and `data` given they
    replace the problem's simulated observations (the problem still supplies the known
    physics, the network shape and, when the data are its own, the truth). `parsimony` is
    the BIC margin an extra term must win by (see `select_structure`). `regression` is the
    symbolic regression of the network's outputs (the CLI's `--regression`); `backend` the
    solver backend, as everywhere in pyude (the pipeline runs on "native").

    Raises ValueError for bad data before any work, and `PipelineError` when a stage fails
    (the UDE fit diverges, no structure can be refit); `report.md` and `results.json` then
    say which stage failed and why."""
    if backend != "native":
        raise ValueError(f"the discovery pipeline runs on the native backend; got "
                         f"backend={backend!r} (the symbolic regression is chosen with "
                         f"regression=, one of sindy, pysr, operon, auto)")
    spec = load_problem(problem)
    _check_requirements(regression)
    if not 0 <= parsimony < math.inf:
        raise ValueError(f"parsimony must be a BIC margin >= 0 (6: an extra term needs "
                         f"strong evidence; 0: the lowest BIC wins); got {parsimony!r}")
    started = time.perf_counter()
    if data is None:
        t, truth, data = make_data(spec, noise, seed)
    else:
        t, data = check_data(t, data)
        truth = None
        if data.shape[-1] != len(spec.state_names):
            raise ValueError(f"data have {data.shape[-1]} states per observation but the "
                             f"problem {spec.name!r} has {len(spec.state_names)} "
                             f"({', '.join(spec.state_names)})")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    header = dict(problem=spec.name, state_names=list(spec.state_names),
                  noise=noise if truth is not None else None, seed=seed,
                  backend=backend, discovery=regression, parsimony=parsimony,
                  versions=_versions(), timings=timings)
    stage = "fit"
    try:
        mark = time.perf_counter()
        ude, net, fitted = _fit_ude(spec, t, data, seed, progress, collocation_iters,
                                    adam_iters, adam_lr, lbfgs_iters)
        timings[stage] = time.perf_counter() - mark

        stage, mark = "discover", time.perf_counter()
        with torch.no_grad():
            dense_t = torch.linspace(float(t[0]), float(t[-1]), 100, dtype=torch.float64)
            states = ude(data[0], dense_t)
            outputs = net(states)
        found = discover(states.numpy(), outputs.numpy(), names=spec.state_names,
                         backend=regression, degree=spec.degree, seed=seed)
        timings[stage] = time.perf_counter() - mark

        # choose the structure by refitting through the ODE; the oracle refits the true form
        stage, mark = "refit", time.perf_counter()
        short = shortlist(found, states.numpy(), outputs.numpy(), spec, t, data, per_target)
        model, _, trials = select_structure(spec, short, t, data, refit_iters,
                                            parsimony=parsimony)
        loss = refit(model, t, data, iters=refit_iters, fit_u0=True)
        oracle = oracle_loss = None
        if spec.true_terms and truth is not None:
            oracle = discovered_model(spec.ude, spec.state_names, spec.known_p,
                                      spec.true_terms)
            oracle_loss = refit(oracle, t, data, iters=refit_iters, fit_u0=True)
        timings[stage] = time.perf_counter() - mark
    except (RuntimeError, SolverError) as err:
        header.update(failed=dict(stage=stage, message=str(err)),
                      seconds=time.perf_counter() - started)
        (out / "results.json").write_text(json.dumps(header, indent=2, default=str))
        (out / "report.md").write_text(_failure_report(header))
        raise PipelineError(f"the {stage} stage failed: {err} (report in {out})") from err

    results = {**header, **_results(spec, fitted, found, model, loss, oracle, oracle_loss,
                                    trials)}
    if truth is not None:
        results["recovered"] = structure_recovered(spec, model)
        times, ref = _extrapolate(spec.u0, spec.truth, spec.true_p, spec.t_extrapolate)
        _, disc = _extrapolate(model.u0, model.f, model.p, spec.t_extrapolate)
        _, orc = _extrapolate(oracle.u0, oracle.f, oracle.p, spec.t_extrapolate)
        window = times > spec.t_end
        for key, sol in (("discovered", disc), ("oracle", orc)):
            ok = sol.success and len(sol) == len(times)
            results["extrapolation"][key] = (_relative_l2(sol.u[window], ref.u[window])
                                             if ok else f"failed: {sol.retcode.name}")
        results["extrapolation"]["window"] = [spec.t_end, spec.t_extrapolate]
        if plots:
            _plots(out, spec, t, data, ude, net, model, states, times, ref, disc)
    elif plots:
        _plots(out, spec, t, data, ude, net, model, states, None, None, None)
    results["seconds"] = time.perf_counter() - started
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    (out / "report.md").write_text(_report(results, plots))
    return results


def _check_requirements(backend: str) -> None:
    """Refuse before any work when a package the run will need is missing."""
    import importlib.util

    from ..discovery import BACKENDS
    if backend not in BACKENDS:
        raise ValueError(f"unknown symbolic-regression backend {backend!r}; choose one of "
                         f"{', '.join(BACKENDS)}")
    needs = {"pysindy": "pyude[discovery]", "scipy": "pyude[discovery]"}
    needs.update({"pysr": {"pysr": "pyude[pysr]"}, "operon": {"pyoperon": "pyude[operon]"}}
                 .get(backend, {}))
    missing = {m: extra for m, extra in needs.items() if importlib.util.find_spec(m) is None}
    if missing:
        raise ImportError(f"the discovery pipeline needs {', '.join(missing)} (smoothing, the "
                          f"candidate library and the {backend} regression): pip install "
                          + " ".join(f"'{e}'" for e in sorted(set(missing.values()))))


def _fit_ude(spec, t, data, seed, progress, collocation_iters, adam_iters, adam_lr,
             lbfgs_iters):
    net = make_network(len(spec.state_names), spec.n_network_outputs, seed)
    ude = UDE(spec.ude, net, spec.known_p, solver=Tsit5(), rtol=1e-6, atol=1e-6)
    fitted = fit(ude, t, data, collocation_iters=collocation_iters, adam_iters=adam_iters,
                 adam_lr=adam_lr, lbfgs_iters=lbfgs_iters, seed=seed, progress=progress)
    if not math.isfinite(fitted.best_loss):
        raise RuntimeError(f"the UDE fit never reached a finite loss: {fitted.stopped}")
    return ude, net, fitted


def _versions() -> dict[str, str]:
    from .. import __version__
    return dict(pyude=__version__, python=platform.python_version(), torch=torch.__version__,
                sympy=sympy.__version__)

