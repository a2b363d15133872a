"""`run`: the whole pipeline, from data to the report folder."""

from __future__ import annotations

import dataclasses
import math
import time
import traceback
from pathlib import Path

import torch
from torch import nn

from .._errors import SolverError
from .._modules import UDE
from .._problem import ODEProblem
from .._solve import solve
from ..discovery import discover, discovered_model, refit
from ..solvers import Tsit5, Vern7
from ..train import check_data, fit
from ._candidates import _collocation_residuals, shortlist
from ._data import make_data, noise_estimate
from ._options import check_options, prepare_out, versions
from ._output import Output, SearchProgress
from ._plots import plots as write_plots
from ._problems import DiscoveryProblem, load_problem
from ._report import fit_summary, results as results_of
from ._selection import budget_for, select_structure, structure_recovered


def make_network(n_in: int, n_out: int, seed: int) -> nn.Module:
    """The UDE paper's network: 2-5-5-5-2 with RBF activations (inputs and outputs sized to
    the problem)."""
    from ..nn import RBF
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(n_in, 5), RBF(), nn.Linear(5, 5), RBF(), nn.Linear(5, 5),
                         RBF(), nn.Linear(5, n_out)).double()


class PipelineError(RuntimeError):
    """A stage of the pipeline failed; the report folder says which and why."""


class InternalError(RuntimeError):
    """An unexpected error inside a stage (a bug, or a model that breaks during the run);
    the original exception is the cause, and the report folder records it."""


def run(problem: str | DiscoveryProblem = "lotka_volterra", *, noise: float | None = None,
        seed: int = 0, out: str | Path = "pyude-report", force: bool = False, t=None,
        data=None, adam_iters: int = 100, lbfgs_iters: int = 1000,
        collocation_iters: int = 1000, adam_lr: float = 1e-3, regression: str = "sindy",
        degree: int | None = None, refit_iters: int = 50, per_target: int = 4,
        parsimony: float = 6.0, holdout: float | None = None, progress: bool = True,
        plots: bool = True, backend: str = "auto") -> dict:
    """Run the whole pipeline and write the report folder.

    Arguments:
        problem: a built-in problem's name, `path/to/file.py:NAME`, or a `DiscoveryProblem`.
        noise, seed: simulate the problem's true model with Gaussian noise of `noise` times
            each state's mean (default 0.05); only without `t` and `data`.
        out, force: the report folder; one that holds a report already is refused unless
            `force`.
        t, data: your own observations (the problem supplies the known physics and the
            network's place).
        adam_iters, lbfgs_iters, collocation_iters, adam_lr: the UDE fit's schedule; the
            report compares the fit's MSE with the data's noise estimate. A fit that ends
            above three times that estimate starts again from two other network
            initialisations (a poor local minimum is the usual cause), and the best is kept.
        regression: the symbolic regression of the network's outputs (the CLI's
            --regression): "sindy", "pysr", "operon" or "auto".
        degree: the polynomial library's degree (default: the problem's).
        refit_iters, per_target, parsimony: the structure search (candidates per network
            output, the BIC margin an extra term must win by; see `select_structure`).
        holdout: the fraction of the observations at the end kept out of the fit for a
            held-out check (default 0.2 for your own data, 0 for simulated data, which get
            an extrapolation check against the truth instead).
        backend: the solves' backend, as everywhere in pyude: "auto" (compiled where the
            model and its network qualify) or "native" (torch). On the compiled backend the
            structure search's candidates share one compiled model (`TermLibrary`).

    Raises ValueError for bad input before any work, and `PipelineError` when a stage fails
    (the UDE fit diverges, no structure can be refit); `report.md` and `results.json` then
    say which stage failed and why. `results.json` is written as the run goes, so an
    interrupted run leaves what it had done."""
    check_options(backend=backend, regression=regression, parsimony=parsimony, noise=noise,
                  data_given=data is not None or t is not None, holdout=holdout,
                  degree=degree, refit_iters=refit_iters, per_target=per_target,
                  adam_iters=adam_iters, lbfgs_iters=lbfgs_iters,
                  collocation_iters=collocation_iters, adam_lr=adam_lr)
    if (t is None) != (data is None):
        raise ValueError("give both t and data (your own observations), or neither (the "
                         "problem's simulated data)")
    spec = load_problem(problem)
    if degree is not None:
        spec = dataclasses.replace(spec, degree=degree)
    started = time.perf_counter()
    if data is None:
        noise = 0.05 if noise is None else noise
        t, truth, data = make_data(spec, noise, seed)
    else:
        t, data = check_data(t, data)
        truth = None
        if data.ndim != 2 or data.shape[-1] != len(spec.state_names):
            raise ValueError(f"data have {data.shape[-1]} states per observation but the "
                             f"problem {spec.name!r} has {len(spec.state_names)} "
                             f"({', '.join(spec.state_names)})")
    holdout = (0.2 if truth is None else 0.0) if holdout is None else holdout
    n_fit = len(t) - int(round(holdout * len(t)))
    if holdout and (len(t) - n_fit < 2 or n_fit < 10):
        raise ValueError(f"holding out {holdout:.0%} of {len(t)} observations leaves "
                         f"{n_fit} to fit and {len(t) - n_fit} to check (at least 10 and 2 "
                         f"are needed); pass holdout=0 (--holdout 0) to skip the check")
    out = prepare_out(out, force)
    header = dict(problem=spec.name, state_names=list(spec.state_names),
                  noise=noise if truth is not None else None, seed=seed, backend=backend,
                  discovery=regression, degree=spec.degree, parsimony=parsimony,
                  holdout=None, versions=versions(), timings={})
    output = Output(out, header, started)
    try:
        result = _stages(spec, t, data, truth, n_fit, output, seed=seed, progress=progress,
                         plots=plots, backend=backend, schedule=dict(
                             collocation_iters=collocation_iters, adam_iters=adam_iters,
                             adam_lr=adam_lr, lbfgs_iters=lbfgs_iters),
                         regression=regression, refit_iters=refit_iters,
                         per_target=per_target, parsimony=parsimony)
    except (RuntimeError, SolverError) as err:
        output.failed(str(err))
        raise PipelineError(f"the {output.stage} stage failed: {err} (report in {out})") \
            from err
    except KeyboardInterrupt:
        output.failed("interrupted (Ctrl-C)", interrupted=True)
        raise
    except Exception as err:
        output.failed(f"internal error: {type(err).__name__}: {err}\n"
                      + "".join(traceback.format_exception(err)))
        raise InternalError(f"internal error in the {output.stage} stage: "
                            f"{type(err).__name__}: {err}") from err
    return result


def _stages(spec, t_all, data_all, truth, n_fit, output, *, seed, progress, plots, backend,
            schedule, regression, refit_iters, per_target, parsimony) -> dict:
    t, data = t_all[:n_fit], data_all[:n_fit]
    output.begin("fit")
    noise_mse = noise_estimate(t, data)
    ude, net, fitted, starts = _fit_ude(spec, t, data, seed, progress, backend, noise_mse,
                                        **schedule)
    output.done(fit=fit_summary(fitted, noise_mse, starts))

    output.begin("discover")
    with torch.no_grad():
        dense_t = torch.linspace(float(t[0]), float(t[-1]), 100, dtype=torch.float64)
        states = ude(data[0], dense_t)
        outputs = net(states)
    found = discover(states.numpy(), outputs.numpy(), names=spec.state_names,
                     backend=regression, degree=spec.degree, seed=seed)
    output.done()

    # choose the structure by refitting through the ODE; the oracle refits the true form
    output.begin("refit")
    budget = budget_for(data, _network_steps(ude, t, data))
    short = shortlist(found, states.numpy(), outputs.numpy(), spec, t, data, per_target)
    search = SearchProgress(progress, sum(len(pool) for pool in short.values()))
    try:
        model, _, _ = select_structure(spec, short, t, data, refit_iters, parsimony=parsimony,
                                       budget=budget, on_trial=lambda event: (
                                           search.update(event), output.trial(event)),
                                       backend=backend)
    finally:
        search.close()
    final = dict(iters=refit_iters, fit_u0=True, maxiters=4 * budget.maxiters,
                 bound=budget.bound, backend=backend)
    loss = refit(model, t, data, **final)
    if not math.isfinite(loss):
        raise RuntimeError(f"the chosen structure could not be refit at rtol 1e-7: "
                           f"{model.failure}")
    warnings = _warnings(spec, loss, fitted.best_loss, noise_mse)
    held = None
    if n_fit < len(t_all):
        held = _holdout(model, ude, t_all, data_all, n_fit, noise_mse)
        warnings += held.pop("warnings")
        loss = refit(model, t_all, data_all, **final)     # the coefficients from every point
    oracle = oracle_loss = None
    if spec.true_terms and truth is not None:
        oracle = discovered_model(spec.ude, spec.state_names, spec.known_p, spec.true_terms)
        oracle_loss = refit(oracle, t, data, **final)
    output.done()

    results = output.finish(results_of(spec, found, model, loss, oracle, oracle_loss,
                                       output.trials), holdout=held, warnings=warnings)
    extrapolation = None
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
        extrapolation = (times, ref, disc)
    pngs = []
    if plots:
        smooth, implied = _collocation_residuals(spec, t_all, data_all)
        pngs = write_plots(output.folder, spec, t_all, data_all, ude, net, model,
                           train_end=float(t[-1]), extrapolation=extrapolation,
                           implied=None if smooth is None else (smooth, implied))
    return output.write_report(results, pngs)


def _network_steps(ude, t, data) -> int:
    """The steps the fitted UDE's own solution takes over the data (at rtol 1e-5, as the
    screening refits solve)."""
    prob = ODEProblem(ude.field, data[0], (float(t[0]), float(t[-1])))
    with torch.no_grad():
        sol = solve(prob, Tsit5(), backend="native",
                    rtol=1e-5, atol=1e-5, throw=False, maxiters=100_000)
    return int(sol.stats.naccept + sol.stats.nreject)


def _warnings(spec, loss: float, network_loss: float, noise_mse: float) -> list[str]:
    """A discovered model that fits the data markedly worse (three times) than the network
    is flagged, with the likely causes; so is a network that fits markedly worse than the
    discovered model (a closed form with a few coefficients should not beat a trained
    network: the network's training got stuck). The network is the yardstick, not the
    noise estimate: a spline cannot tell noise from dynamics that the observations sample
    sparsely, and then overestimates the noise many times."""
    if loss * 3.0 < network_loss:
        return [f"the network fits the data {network_loss / loss:.1f} times worse than the "
                f"discovered model (MSE {network_loss:.3g} against {loss:.3g}): its training "
                f"ended in a poor local minimum, so its own terms (fit.png, terms.png) are "
                f"less reliable than the discovered model; the structure search also "
                f"fitted candidates to the data directly"]
    if loss <= 3.0 * network_loss:
        return []
    return [f"the discovered model fits the data {loss / network_loss:.1f} times worse than "
            f"the network (MSE {loss:.3g} against {network_loss:.3g}; noise estimate "
            f"{noise_mse:.3g}). Likely causes: the library is too small for the unknown "
            f"terms (degree {spec.degree}: try --degree {spec.degree + 1}), or the noise is "
            f"too large for the terms to be told apart"]


def _holdout(model, ude, t_all, data_all, n_fit, noise_mse) -> dict:
    """The discovered model and the network, fitted without the last observations, predict
    them from their initial states; relative L2 errors, and the noise's own level."""
    held = data_all[n_fit:]
    norm = float(torch.linalg.norm(held))
    prob = ODEProblem(model.f, model.u0, (float(t_all[0]), float(t_all[-1])), model.p)
    with torch.no_grad():
        sol = solve(prob, Tsit5(), backend="native",
                    saveat=t_all, rtol=1e-7, atol=1e-7, throw=False,
                    maxiters=100_000)
        net_pred = ude(data_all[0], t_all)
    disc = (float(torch.linalg.norm(sol.u[n_fit:] - held)) / norm
            if sol.success and len(sol) == len(t_all) else f"failed: {sol.retcode.name}")
    noise_level = math.sqrt(noise_mse * held.numel()) / norm
    out = dict(window=[float(t_all[n_fit]), float(t_all[-1])],
               observations=len(t_all) - n_fit, discovered=disc,
               network=float(torch.linalg.norm(net_pred[n_fit:] - held)) / norm,
               noise_level=noise_level, warnings=[])
    if not isinstance(disc, float) or disc > max(3 * noise_level, 0.05):
        out["warnings"].append(
            f"the discovered model predicts the held-out observations poorly (relative error "
            f"{disc if isinstance(disc, str) else f'{disc:.1%}'} against a noise level of "
            f"about {noise_level:.1%}): the structure may be wrong, or the held-out part "
            f"behaves differently from the fitted one")
    return out


# A fit above this many times the noise estimate starts again from another initialisation,
# at most `_RESTARTS` times: on the systems of benchmarks/discovery_systems.py one network
# initialisation in a few ends in a poor local minimum (30 times the noise or more).
_RESTART_ABOVE, _RESTARTS = 3.0, 2


def _fit_ude(spec, t, data, seed, progress, backend, noise_mse, *, collocation_iters,
             adam_iters, adam_lr, lbfgs_iters):
    """The UDE fitted from the network initialised by `seed`, or, when that ends far above
    the noise, the best of up to three initialisations; and how many were tried."""
    best, seconds = None, 0.0
    # a fit within a ten-thousandth of the data's variance is good whatever the estimate
    # says (noise-free data give an estimate near zero that no fit reaches)
    floor = max(noise_mse, 1e-4 * float(data.var(dim=0).mean()))
    for start in range(_RESTARTS + 1):
        net = make_network(len(spec.state_names), spec.n_network_outputs, seed + 1000 * start)
        ude = UDE(spec.ude, net, spec.known_p, solver=Tsit5(), rtol=1e-6, atol=1e-6,
                  backend=backend)
        fitted = fit(ude, t, data, collocation_iters=collocation_iters,
                     adam_iters=adam_iters, adam_lr=adam_lr, lbfgs_iters=lbfgs_iters,
                     seed=seed, progress=progress)
        seconds += fitted.seconds
        if best is None or fitted.best_loss < best[2].best_loss:
            best = (ude, net, fitted)
        if fitted.best_loss <= _RESTART_ABOVE * floor:
            break
    best[2].seconds = seconds              # the report's fit time: every start's
    if not math.isfinite(best[2].best_loss):
        raise RuntimeError(f"the UDE fit never reached a finite loss: {best[2].stopped}")
    return (*best, start + 1)


def _relative_l2(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.linalg.norm(a - b) / torch.linalg.norm(b))


def _extrapolate(u0, f, p, t_end):
    """The model's prediction from its own initial state (the truth's from the true one;
    a refit model's from the state it estimated, as a user would predict)."""
    times = torch.linspace(0.0, t_end, 401, dtype=torch.float64)
    prob = ODEProblem(f, u0, (0.0, t_end), p)
    sol = solve(prob, Vern7(), backend="native", saveat=times, rtol=1e-9, atol=1e-9, throw=False,
                maxiters=20_000)
    return times, sol
