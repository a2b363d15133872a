"""The equation-discovery pipeline: noisy data -> UDE fit -> symbolic regression of the network
terms -> refit of the discovered model through the ODE -> extrapolation check -> report.

`run(...)` is what `pyude demo` and `pyude discover` call; it writes `report.md`,
`results.json` and PNG plots into a folder and returns the results as a dict.
"""

from __future__ import annotations

import itertools
import json
import math
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import sympy
import torch
from torch import nn

from ._errors import SolverError
from ._modules import UDE
from ._problem import ODEProblem
from ._solve import solve
from .discovery import discover, discovered_model, refit
from .solvers import Tsit5, Vern7
from .symbolic import trace
from .train import check_data, fit


@dataclass
class DiscoveryProblem:
    """A built-in discovery experiment: the true model, the known physics with network
    terms, and the truth the report compares against."""

    name: str
    truth: Callable                   # f(u, p, t)
    true_p: dict[str, float]
    ude: Callable                     # f(u, p, t, nn): known physics + nn(u)
    known_p: dict[str, float]
    u0: list[float]
    t_end: float
    dt_save: float
    t_extrapolate: float
    state_names: list[str]
    n_network_outputs: int
    true_terms: list[sympy.Expr]      # what the network should turn out to be
    degree: int = 2
    extra: dict = field(default_factory=dict)

    def truth_as_ude(self, u, p, t, nn_):
        """The true model in the UDE's call signature (no network outputs), for tracing."""
        return self.truth(u, p, t)


def _lv_truth(u, p, t):
    x, y = u
    return [p.alpha * x - p.beta * x * y, p.gamma * x * y - p.delta * y]


def _lv_ude(u, p, t, nn_):
    x, y = u
    m1, m2 = nn_(u)
    return [p.alpha * x + m1, -p.delta * y + m2]


def _oscillator_truth(u, p, t):
    x, v = u
    return [v, -p.k * x - p.c * v**3]


def _oscillator_ude(u, p, t, nn_):
    x, v = u
    (m,) = nn_(u)
    return [v, -p.k * x + m]


_X, _Y, _V = sympy.symbols("x y v", real=True)

PROBLEMS = {
    "lotka_volterra": DiscoveryProblem(
        "lotka_volterra", _lv_truth, dict(alpha=1.3, beta=0.9, gamma=0.8, delta=1.8),
        _lv_ude, dict(alpha=1.3, delta=1.8), [0.44249296, 4.6280594], 3.0, 0.1, 20.0,
        ["x", "y"], 2, [-0.9 * _X * _Y, 0.8 * _X * _Y]),
    "cubic_friction": DiscoveryProblem(
        "cubic_friction", _oscillator_truth, dict(k=1.0, c=0.3), _oscillator_ude, dict(k=1.0),
        [2.0, 0.0], 10.0, 0.1, 30.0, ["x", "v"], 1, [-0.3 * _V**3], degree=3),
}


def make_data(problem: DiscoveryProblem, noise: float, seed: int):
    """Observations every dt_save on [0, t_end] with Gaussian noise of `noise` times each
    state's mean absolute value."""
    t = torch.arange(0.0, problem.t_end + 1e-9, problem.dt_save, dtype=torch.float64)
    prob = ODEProblem(problem.truth, problem.u0, (0.0, problem.t_end), problem.true_p)
    truth = solve(prob, Vern7(), saveat=t, rtol=1e-12, atol=1e-12).u
    gen = torch.Generator().manual_seed(seed)
    scale = noise * truth.abs().mean(dim=0)
    data = truth + scale * torch.randn(truth.shape, generator=gen, dtype=torch.float64)
    return t, truth, data


def make_network(n_in: int, n_out: int, seed: int) -> nn.Module:
    """The UDE paper's network: 2-5-5-5-2 with RBF activations (inputs and outputs sized to
    the problem)."""
    from .nn import RBF
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(n_in, 5), RBF(), nn.Linear(5, 5), RBF(), nn.Linear(5, 5),
                         RBF(), nn.Linear(5, n_out)).double()


def _stays_bounded(problem, model, t, data, horizon: float = 3.0) -> bool:
    """A plausible model integrates for `horizon` times the observed span and stays within
    ten times the observed range: a structure that blows up just past the data is rejected
    (this looks only at the model, never at data beyond the training window)."""
    t_end = float(t[0]) + horizon * float(t[-1] - t[0])
    prob = ODEProblem(model.f, data[0], (float(t[0]), t_end), model.p)
    with torch.no_grad():
        sol = solve(prob, Tsit5(), rtol=1e-6, atol=1e-6, saveat=[t_end], throw=False,
                    maxiters=20_000)
    return sol.success and float(sol.u.abs().max()) < 10 * float(data.abs().max())


def _bic(loss: float, n: int, k: int) -> float:
    return n * math.log(max(loss, 1e-300)) + k * math.log(n)


def _collocation_residuals(spec, t, data):
    """Smoothed states and, for each network output, what it must equal by the data: the
    smoothed derivative of the equation it enters minus that equation's known physics."""
    from .train import smoothed_derivatives
    states, slopes = smoothed_derivatives(t, data)
    targets = [f"nn{j + 1}" for j in range(spec.n_network_outputs)]
    known = discovered_model(spec.ude, spec.state_names, spec.known_p,
                             [sympy.Integer(0)] * spec.n_network_outputs)
    traced = trace(spec.ude, len(spec.state_names), spec.known_p,
                   nn_outputs=spec.n_network_outputs, state_names=spec.state_names)
    rows = []
    for out in traced.nn_outputs:
        uses = [i for i, e in enumerate(traced.exprs) if e.diff(out) != 0]
        if len(uses) != 1 or traced.exprs[uses[0]].diff(out) != 1:
            return None, None, None        # the output is not additive in one equation
        rows.append(uses[0])
    with torch.no_grad():
        params = {k: torch.tensor(v, dtype=torch.float64) for k, v in known.p.items()}
        physics = torch.stack([torch.stack([torch.as_tensor(v, dtype=torch.float64).expand(())
                                            for v in known.f(list(u), params, float(ti))])
                               for ti, u in zip(t, states)])
    residual = (slopes - physics)[:, rows]
    return states.numpy(), residual.numpy(), targets


def shortlist(found, states, outputs, spec, t, data, per_target: int = 4):
    """Per target: every one- and two-term library model fitted by collocation (to the
    smoothed data's derivative minus the known physics) and the sparse-regression
    candidates on the network's outputs, each list ranked by its BIC; the best `per_target`
    of the union without repeats, collocation's first."""
    from .discovery._sindy import subset_candidates
    targets = list(found.candidates)
    on_network = subset_candidates(states, outputs, spec.state_names, targets,
                                   degree=spec.degree, max_terms=2)
    smooth, residual, _ = _collocation_residuals(spec, t, data)
    on_data = subset_candidates(smooth, residual, spec.state_names, targets,
                                degree=spec.degree, max_terms=2) if smooth is not None else {}
    out = {}
    for target in targets:
        ranked, seen = [], set()
        pools = [on_data.get(target, [])[:per_target],
                 sorted([*found.candidates[target], *on_network[target]], key=lambda e: e.bic)]
        for eq in itertools.chain(*pools):
            key = frozenset(str(term) for term in eq.expr.as_coefficients_dict())
            if key not in seen:
                seen.add(key)
                ranked.append(eq)
        chosen = ranked[:per_target]
        # ... and each single term those candidates use: the simplest structures must be
        # refit too, or a spurious extra term can win only because its rival was never tried
        terms = {str(term) for eq in chosen for term in eq.expr.as_coefficients_dict()}
        singles = [eq for eq in on_network[target]
                   if eq.complexity == 1 and str(next(iter(eq.expr.as_coefficients_dict())))
                   in terms]
        have = {frozenset(str(term) for term in eq.expr.as_coefficients_dict())
                for eq in chosen}
        for eq in singles:
            key = frozenset(str(term) for term in eq.expr.as_coefficients_dict())
            if key not in have:
                have.add(key)
                chosen.append(eq)
        out[target] = chosen
    return out


def select_structure(problem, candidates, t, data, iters: int = 50):
    """Refit every combination of the targets' shortlisted candidates through the ODE and
    keep the one with the lowest BIC on the data: thresholding the network's outputs alone
    is fooled by nearly collinear terms along one trajectory."""
    per_target = list(candidates.values())
    n = data.numel()
    trials = []
    for combo in itertools.product(*per_target):
        model = discovered_model(problem.ude, problem.state_names, problem.known_p,
                                 [eq.expr for eq in combo])
        try:
            loss = refit(model, t, data, iters=iters)
        except (SolverError, RuntimeError):
            continue
        if math.isfinite(loss) and _stays_bounded(problem, model, t, data):
            trials.append((_bic(loss, n, len(model.coefficients)), loss, model))
    if not trials:
        raise RuntimeError("no discovered structure could be refit through the ODE")
    trials.sort(key=lambda item: item[0])
    return trials[0][2], trials[0][1], [(b, lo, m.equations()) for b, lo, m in trials]


def _relative_l2(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.linalg.norm(a - b) / torch.linalg.norm(b))


def _extrapolate(problem, f, p, t_end):
    times = torch.linspace(0.0, t_end, 401, dtype=torch.float64)
    prob = ODEProblem(f, problem.u0, (0.0, t_end), p)
    sol = solve(prob, Vern7(), saveat=times, rtol=1e-9, atol=1e-9, throw=False)
    return times, sol


def run(problem: str | DiscoveryProblem = "lotka_volterra", *, noise: float = 0.05,
        seed: int = 0, out: str | Path = "pyude-report", t=None, data=None,
        adam_iters: int = 300, lbfgs_iters: int = 100, collocation_iters: int = 500,
        backend: str = "sindy", refit_iters: int = 50, per_target: int = 4,
        progress: bool = True, plots: bool = True) -> dict:
    """Run the whole pipeline and write the report folder. With `t` and `data` given they
    replace the problem's simulated observations (the problem still supplies the known
    physics, the network shape and, when the data are its own, the truth)."""
    spec = PROBLEMS[problem] if isinstance(problem, str) else problem
    started = time.perf_counter()
    timings: dict[str, float] = {}
    if data is None:
        t, truth, data = make_data(spec, noise, seed)
    else:
        t, data = check_data(t, data)
        truth = None
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    # 1. fit the UDE
    mark = time.perf_counter()
    net = make_network(len(spec.state_names), spec.n_network_outputs, seed)
    ude = UDE(spec.ude, net, spec.known_p, solver=Tsit5(), rtol=1e-6, atol=1e-6)
    fitted = fit(ude, t, data, collocation_iters=collocation_iters, adam_iters=adam_iters,
                 lbfgs_iters=lbfgs_iters, seed=seed, progress=progress)
    timings["fit"] = time.perf_counter() - mark
    if not math.isfinite(fitted.best_loss):
        raise RuntimeError(f"the UDE fit failed: {fitted.stopped}")

    # 2. symbolic regression of the network's outputs along the fitted trajectory
    mark = time.perf_counter()
    with torch.no_grad():
        dense_t = torch.linspace(float(t[0]), float(t[-1]), 100, dtype=torch.float64)
        states = ude(data[0], dense_t)
        outputs = net(states)
    found = discover(states.numpy(), outputs.numpy(), names=spec.state_names,
                     backend=backend, degree=spec.degree, seed=seed)
    timings["discover"] = time.perf_counter() - mark

    # 3. choose the structure by refitting through the ODE; the oracle refits the truth's form
    mark = time.perf_counter()
    short = shortlist(found, states.numpy(), outputs.numpy(), spec, t, data, per_target)
    model, loss, trials = select_structure(spec, short, t, data, refit_iters)
    oracle = discovered_model(spec.ude, spec.state_names, spec.known_p, spec.true_terms)
    oracle_loss = refit(oracle, t, data, iters=refit_iters)
    timings["refit"] = time.perf_counter() - mark

    # 4. extrapolation against the truth (when the data are the problem's own)
    results = _results(spec, noise, seed, fitted, found, model, loss, oracle, oracle_loss,
                       trials, timings, backend)
    if truth is not None:
        results["recovered"] = structure_recovered(spec, model)
        times, ref = _extrapolate(spec, spec.truth, spec.true_p, spec.t_extrapolate)
        _, disc = _extrapolate(spec, model.f, model.p, spec.t_extrapolate)
        _, orc = _extrapolate(spec, oracle.f, oracle.p, spec.t_extrapolate)
        window = times > spec.t_end
        for key, sol in (("discovered", disc), ("oracle", orc)):
            ok = sol.success and len(sol) == len(times)
            results["extrapolation"][key] = (_relative_l2(sol.u[window], ref.u[window])
                                             if ok else f"failed: {sol.retcode.name}")
        if plots:
            _plots(out, spec, t, data, ude, net, model, states, times, ref, disc)
    results["seconds"] = time.perf_counter() - started
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    (out / "report.md").write_text(_report(results, plots and truth is not None))
    return results


def _coefficient_terms(expr: sympy.Expr) -> dict[str, float]:
    return {str(term): float(coef) for term, coef in expr.as_coefficients_dict().items()}


def structure_recovered(spec: DiscoveryProblem, model) -> bool:
    """The UDE paper's criterion of success: every equation of the discovered model has
    exactly the terms of the true model, and the known physics is untouched (a discovered
    term that merges with a known one, like c*x beside alpha*x, changes its coefficient and
    fails)."""
    truth = discovered_model(spec.truth_as_ude, spec.state_names, spec.true_p, [])
    known = discovered_model(spec.ude, spec.state_names, spec.known_p,
                             [sympy.Integer(0)] * spec.n_network_outputs)
    found = model.equations(digits=None)
    for got, want, kept in zip(found, truth.equations(None), known.equations(None)):
        got_terms, want_terms = _coefficient_terms(got), _coefficient_terms(want)
        if set(got_terms) != set(want_terms):
            return False
        for term, value in _coefficient_terms(kept).items():
            if not math.isclose(got_terms[term], value, rel_tol=1e-9):
                return False
    return True


def _results(spec, noise, seed, fitted, found, model, loss, oracle, oracle_loss, trials,
             timings, backend):
    import torch as _torch

    from . import __version__
    equations = model.equations()
    exact = model.equations(digits=None)
    return dict(
        problem=spec.name, noise=noise, seed=seed, backend="native", discovery=backend,
        versions=dict(pyude=__version__, python=platform.python_version(),
                      torch=_torch.__version__, sympy=sympy.__version__),
        fit=dict(best_loss=fitted.best_loss, iterations=len(fitted.losses),
                 stopped=fitted.stopped),
        network_terms={k: str(v.expr) for k, v in found.selected.items()},
        discovered=dict(equations=[str(e) for e in equations],
                        latex=[sympy.latex(e) for e in equations],
                        terms=[_coefficient_terms(e) for e in exact], loss=loss,
                        coefficients={k: model.p[k] for k in model.coefficients}),
        oracle=dict(equations=[str(e) for e in oracle.equations()], loss=oracle_loss,
                    coefficients={k: oracle.p[k] for k in oracle.coefficients}),
        truth=[str(e) for e in spec.true_terms],
        candidates_tried=[dict(bic=b, loss=lo, equations=[str(e) for e in eqs])
                          for b, lo, eqs in trials[:10]],
        timings=timings, extrapolation={},
    )


def _report(r: dict, with_plots: bool) -> str:
    lines = [f"# pyude discovery report: {r['problem']}", "",
             f"noise {r['noise']:.3%} of each state's mean, seed {r['seed']}, backend "
             f"{r['backend']}, symbolic regression by {r['discovery']}; {r['seconds']:.1f} s "
             f"(fit {r['timings']['fit']:.1f} s, discovery {r['timings']['discover']:.1f} s, "
             f"refits {r['timings']['refit']:.1f} s).", "",
             "## Discovered model", ""]
    lines += [f"$$\\dot u_{i + 1} = {eq}$$" for i, eq in enumerate(r["discovered"]["latex"])]
    lines += ["", "| | discovered (refit) | oracle refit of the true form | truth |",
              "|---|---|---|---|"]
    lines.append(f"| network terms | {', '.join(r['network_terms'].values())} | "
                 f"{', '.join(r['oracle']['equations'])} | {', '.join(r['truth'])} |")
    lines.append(f"| coefficients | {r['discovered']['coefficients']} | "
                 f"{r['oracle']['coefficients']} | |")
    lines.append(f"| data MSE | {r['discovered']['loss']:.4g} | {r['oracle']['loss']:.4g} | |")
    extra = r["extrapolation"]
    if extra:
        lines.append(f"| relative L2 error, extrapolation | {extra['discovered']} | "
                     f"{extra['oracle']} | |")
    lines += ["", f"UDE fit: best loss {r['fit']['best_loss']:.4g} after "
              f"{r['fit']['iterations']} iterations" + (f"; {r['fit']['stopped']}"
                                                         if r['fit']['stopped'] else "") + ".",
              "", "## Structures tried (by BIC of the refit through the ODE)", ""]
    lines += [f"- BIC {c['bic']:.1f}, MSE {c['loss']:.4g}: {', '.join(c['equations'])}"
              for c in r["candidates_tried"]]
    if with_plots:
        lines += ["", "## Plots", "", "![fit](fit.png)", "", "![terms](terms.png)", "",
                  "![extrapolation](extrapolation.png)"]
    lines += ["", f"Versions: {r['versions']}", ""]
    return "\n".join(lines)


def _plots(out, spec, t, data, ude, net, model, states, times, ref, disc):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    with torch.no_grad():
        fit_curve = ude(data[0], times[times <= spec.t_end])
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for i, name in enumerate(spec.state_names):
        ax.plot(t, data[:, i], "o", ms=3, label=f"{name} data")
        ax.plot(times[times <= spec.t_end], fit_curve[:, i], label=f"{name} UDE fit")
    ax.set_xlabel("t")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "fit.png", dpi=110)
    plt.close(fig)

    from .symbolic import to_torch
    symbols = [sympy.Symbol(n, real=True) for n in spec.state_names]
    fig, axes = plt.subplots(1, spec.n_network_outputs, figsize=(4.5 * spec.n_network_outputs, 3.5),
                             squeeze=False)
    with torch.no_grad():
        learned = net(states)
    order = torch.arange(states.shape[0])
    disc_terms = [e.subs({sympy.Symbol(k, real=True): v for k, v in model.p.items()})
                  for e in _network_exprs(model, spec)]
    for j, ax in enumerate(axes[0]):
        truth_j = to_torch([spec.true_terms[j]], symbols)(*states.unbind(-1))[0]
        found_j = to_torch([disc_terms[j]], symbols)(*states.unbind(-1))[0]
        ax.plot(order, learned[:, j], label="network")
        ax.plot(order, torch.as_tensor(found_j).expand(len(order)), "--", label="discovered")
        ax.plot(order, torch.as_tensor(truth_j).expand(len(order)), ":", label="truth")
        ax.set_title(f"term {j + 1} along the fitted trajectory")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "terms.png", dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 3.5))
    for i, name in enumerate(spec.state_names):
        ax.plot(times, ref.u[:, i], label=f"{name} truth")
        if len(disc) == len(times):
            ax.plot(times, disc.u[:, i], "--", label=f"{name} discovered")
    ax.axvline(spec.t_end, color="grey", lw=0.8)
    ax.set_xlabel("t")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "extrapolation.png", dpi=110)
    plt.close(fig)


def _network_exprs(model, spec):
    """The discovered terms alone: the model's right-hand side minus the known physics."""
    known = discovered_model(spec.ude, spec.state_names, spec.known_p,
                             [sympy.Integer(0)] * spec.n_network_outputs)
    diffs = [sympy.simplify(a - b) for a, b in zip(model.exprs, known.exprs)]
    return [d for d in diffs if d != 0][:spec.n_network_outputs] or diffs
