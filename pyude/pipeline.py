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
    """A discovery experiment: the known physics with network terms and, for a built-in
    (simulated) problem, the true model that makes the data and that the report compares
    against. For your own data only the first five fields are needed.

    Example:
        def ude(u, p, t, nn):          # the same one model definition as everywhere
            x, y = u
            m1, m2 = nn(u)
            return [p.alpha * x + m1, -p.delta * y + m2]
        problem = DiscoveryProblem("predator_prey", ude, dict(alpha=1.3, delta=1.8),
                                   ["x", "y"], n_network_outputs=2)
    """

    name: str
    ude: Callable                     # f(u, p, t, nn): known physics + nn(u)
    known_p: dict[str, float]
    state_names: list[str]
    n_network_outputs: int
    degree: int = 2                   # of the polynomial library for sparse regression
    truth: Callable | None = None     # f(u, p, t), when the data are simulated
    true_p: dict[str, float] = field(default_factory=dict)
    true_terms: list[sympy.Expr] = field(default_factory=list)  # what nn should become
    u0: list[float] | None = None
    t_end: float = 0.0
    dt_save: float = 0.1
    t_extrapolate: float = 0.0

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
        "lotka_volterra", _lv_ude, dict(alpha=1.3, delta=1.8), ["x", "y"], 2,
        truth=_lv_truth, true_p=dict(alpha=1.3, beta=0.9, gamma=0.8, delta=1.8),
        true_terms=[-0.9 * _X * _Y, 0.8 * _X * _Y], u0=[0.44249296, 4.6280594], t_end=3.0,
        t_extrapolate=20.0),
    "cubic_friction": DiscoveryProblem(
        "cubic_friction", _oscillator_ude, dict(k=1.0), ["x", "v"], 1, degree=3,
        truth=_oscillator_truth, true_p=dict(k=1.0, c=0.3), true_terms=[-0.3 * _V**3],
        u0=[2.0, 0.0], t_end=10.0, t_extrapolate=30.0),
}


def load_problem(name: str | DiscoveryProblem) -> DiscoveryProblem:
    """A built-in problem by name, or `path/to/file.py:NAME` for a `DiscoveryProblem`
    defined in your own file."""
    if isinstance(name, DiscoveryProblem):
        return name
    if name in PROBLEMS:
        return PROBLEMS[name]
    if ":" not in name:
        raise ValueError(f"unknown problem {name!r}; built-in problems: "
                         f"{', '.join(PROBLEMS)}; or give path/to/file.py:NAME for a "
                         f"DiscoveryProblem of your own")
    import importlib.util
    path, attr = name.rsplit(":", 1)
    if not Path(path).is_file():
        raise FileNotFoundError(f"no Python file at {path} (from the problem {name!r})")
    module_spec = importlib.util.spec_from_file_location(Path(path).stem, path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    problem = getattr(module, attr, None)
    if not isinstance(problem, DiscoveryProblem):
        raise TypeError(f"{path} has no DiscoveryProblem named {attr!r} (found "
                        f"{type(problem).__name__}); define one with "
                        f"pyude.pipeline.DiscoveryProblem(name, ude, known_p, state_names, "
                        f"n_network_outputs)")
    return problem


def make_data(problem: DiscoveryProblem, noise: float, seed: int):
    """Observations every dt_save on [0, t_end] with Gaussian noise of `noise` times each
    state's mean absolute value."""
    if problem.truth is None:
        raise ValueError(f"the problem {problem.name!r} has no true model to simulate data "
                         f"from; give the observations (t and data)")
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
    """A plausible model integrates over `horizon` times the observed span, or up to the
    problem's extrapolation horizon when that is further (the model is meant to be used
    there), and stays within ten times the observed range all along: a structure that
    blows up past the data is rejected. This looks only at the model, never at data beyond
    the training window."""
    t0 = float(t[0])
    t_end = max(t0 + horizon * float(t[-1] - t0), problem.t_extrapolate)
    prob = ODEProblem(model.f, data[0], (t0, t_end), model.p)
    with torch.no_grad():
        sol = solve(prob, Tsit5(), rtol=1e-6, atol=1e-6, throw=False, maxiters=20_000,
                    saveat=torch.linspace(t0, t_end, 201, dtype=torch.float64))
    return sol.success and float(sol.u.abs().max()) < 10 * float(data.abs().max())


def _bic(model, per_state: int) -> float:
    """The Bayesian information criterion of a refit model under Gaussian noise with each
    state's own variance (the states' noise levels differ: pooling them would let the
    noisiest state decide every equation's terms)."""
    n = per_state * len(model.state_mse)
    return (per_state * sum(math.log(max(m, 1e-300)) for m in model.state_mse)
            + len(model.coefficients) * math.log(n))


def _output_equations(spec) -> list[int] | None:
    """The equation each network output enters, when every output is added to exactly one
    equation (None otherwise)."""
    traced = trace(spec.ude, len(spec.state_names), spec.known_p,
                   nn_outputs=spec.n_network_outputs, state_names=spec.state_names)
    rows = []
    for out in traced.nn_outputs:
        uses = [i for i, e in enumerate(traced.exprs) if e.diff(out) != 0]
        if len(uses) != 1 or traced.exprs[uses[0]].diff(out) != 1:
            return None
        rows.append(uses[0])
    return rows


def _known_physics(spec):
    return discovered_model(spec.ude, spec.state_names, spec.known_p,
                            [sympy.Integer(0)] * spec.n_network_outputs)


def _terms_of(expr: sympy.Expr) -> frozenset[str]:
    return frozenset(str(term) for term in expr.as_coefficients_dict())


def _collocation_residuals(spec, t, data):
    """Smoothed states and, for each network output, what it must equal by the data: the
    smoothed derivative of the equation it enters minus that equation's known physics."""
    from .train import smoothed_derivatives
    rows = _output_equations(spec)
    if rows is None:
        return None, None
    states, slopes = smoothed_derivatives(t, data)
    known = _known_physics(spec)
    with torch.no_grad():
        params = {k: torch.tensor(v, dtype=torch.float64) for k, v in known.p.items()}
        physics = torch.stack([torch.stack([torch.as_tensor(v, dtype=torch.float64).expand(())
                                            for v in known.f(list(u), params, float(ti))])
                               for ti, u in zip(t, states)])
    residual = (slopes - physics)[:, rows]
    return states.numpy(), residual.numpy()


def _known_terms_by_output(spec) -> list[frozenset[str]]:
    """For each network output, the terms the known physics already has in its equation: a
    candidate made of those would only re-estimate a parameter the UDE takes as known."""
    rows = _output_equations(spec)
    if rows is None:
        return [frozenset()] * spec.n_network_outputs
    known = _known_physics(spec).equations(None)
    return [_terms_of(known[row]) for row in rows]


def shortlist(found, states, outputs, spec, t, data, per_target: int = 4):
    """Per target: every one- and two-term library model fitted by collocation (to the
    smoothed data's derivative minus the known physics) and the sparse-regression
    candidates on the network's outputs, each list ranked by its BIC; the best `per_target`
    of the union without repeats, collocation's first, then every single library term.
    A candidate holding a term the known physics already has in that equation (c*y beside
    -delta*y) is left out: the UDE takes the known parameters as known, and such a term
    would only re-estimate one of them."""
    from .discovery._sindy import subset_candidates
    targets = list(found.candidates)
    on_network = subset_candidates(states, outputs, spec.state_names, targets,
                                   degree=spec.degree, max_terms=2)
    smooth, residual = _collocation_residuals(spec, t, data)
    on_data = subset_candidates(smooth, residual, spec.state_names, targets,
                                degree=spec.degree, max_terms=2) if smooth is not None else {}
    out = {}
    for target, known in zip(targets, _known_terms_by_output(spec)):
        def allowed(eqs):
            return [eq for eq in eqs if not _terms_of(eq.expr) & known]
        pools = [allowed(on_data.get(target, []))[:per_target],
                 sorted(allowed([*found.candidates[target], *on_network[target]]),
                        key=lambda e: e.bic)]
        ranked, seen = [], set()
        for eq in itertools.chain(*pools):
            if _terms_of(eq.expr) not in seen:
                seen.add(_terms_of(eq.expr))
                ranked.append(eq)
        chosen = ranked[:per_target]
        # ... and every single library term: the simplest structures must be refit too, or a
        # spurious extra term can win only because its rival was never tried, and a term the
        # regressions rank low (nearly collinear with others along one noisy trajectory) may
        # still be the one the ODE fit prefers
        have = {_terms_of(eq.expr) for eq in chosen}
        for eq in allowed(on_network[target]):
            key = _terms_of(eq.expr)
            if eq.complexity == 1 and key not in have:
                have.add(key)
                chosen.append(eq)
        if not chosen:
            raise RuntimeError(f"no candidate for {target} is left once the terms of the "
                               f"known physics ({', '.join(sorted(known))}) are set aside")
        out[target] = chosen
    return out


def select_structure(problem, candidates, t, data, iters: int = 50, rtol: float = 1e-5,
                     parsimony: float = 6.0):
    """Choose one candidate per target by refitting the discovered model through the ODE
    and comparing the BIC on the data: thresholding the network's outputs alone is fooled
    by nearly collinear terms along one trajectory.

    The combinations are searched target by target (each target's candidates tried with
    the others held at the current choice, until no change improves the BIC), so the
    number of refits grows with the sum of the candidate lists, not their product; the
    last sweep has tried every one-target change of the winner, its simplifications
    included. A second search starts from each target's first single-term candidate,
    since the simplest structures can lie where no one-target change of a richer winner
    leads. The screening refits solve at `rtol` (1e-5 moves the losses by about 1e-6
    relative, far below the ~5% a BIC difference of one term needs) and estimate the
    initial state too: held at the noisy first observation, a spurious term can win only
    by making up for that one point's noise.

    The fewest coefficients within `parsimony` BIC units of the best win (then the lower
    BIC): an extra term must be strongly supported (a difference of 6 or more, Kass and
    Raftery's "strong" evidence), since a small spurious term fitted to one noise
    realisation is the typical failure and the structure is what the user takes away.
    Returns the model, its loss and every structure tried, best BIC first."""
    per_target = list(candidates.values())
    tried: dict[tuple[int, ...], tuple[float, float, object]] = {}

    def score(choice: tuple[int, ...]) -> float:
        if choice not in tried:
            model = discovered_model(problem.ude, problem.state_names, problem.known_p,
                                     [pool[k].expr for pool, k in zip(per_target, choice)])
            try:
                loss = refit(model, t, data, iters=iters, rtol=rtol, atol=rtol, fit_u0=True)
            except (SolverError, RuntimeError):
                loss = math.inf
            bic = _bic(model, data.numel() // data.shape[-1]) if math.isfinite(loss) else math.inf
            tried[choice] = (bic, loss, model)
        return tried[choice][0]

    def search(choice: tuple[int, ...]) -> None:
        changed = True
        while changed:
            changed = False
            for j, pool in enumerate(per_target):
                options = [choice[:j] + (k,) + choice[j + 1:] for k in range(len(pool))]
                best = min(options, key=score)
                if score(best) < score(choice):
                    choice, changed = best, True

    # from the best-ranked candidates, then from each target's first single term: the
    # simplest structures can sit in another valley of the BIC than the richer ones
    search(tuple(0 for _ in per_target))
    search(tuple(next((k for k, eq in enumerate(pool) if len(_terms_of(eq.expr)) == 1), 0)
                 for pool in per_target))
    trials = sorted((trial for trial in tried.values() if math.isfinite(trial[0])),
                    key=lambda trial: trial[0])
    if not trials:
        raise RuntimeError("no discovered structure could be refit through the ODE")
    preferred = sorted(trials, key=lambda trial: _parsimony_rank(trial, trials[0][0],
                                                                 parsimony))
    # the boundedness check costs a long solve: only down the ranking until one passes
    kept = next((trial for trial in preferred
                 if _stays_bounded(problem, trial[2], t, data)), None)
    if kept is None:
        raise RuntimeError("no discovered structure could be refit through the ODE and stay "
                           "bounded beyond the data")
    return kept[2], kept[1], [(b, lo, m.equations()) for b, lo, m in trials]


def _parsimony_rank(trial, best_bic: float, parsimony: float) -> tuple:
    """Within `parsimony` of the best BIC: fewest coefficients first, then the lower BIC;
    beyond it, by BIC alone."""
    bic, _, model = trial
    if bic <= best_bic + parsimony:
        return (0, len(model.coefficients), bic)
    return (1, 0, bic)


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


def load_data(path: str | Path, state_names: list[str] | None = None):
    """Observations from a file: a CSV with a header row (a time column named `t` or
    `time`, then one column per state) or an NPZ with arrays `t` and `u` (shape
    (len(t), n)). With `state_names` given, CSV columns are taken by those names.
    Returns (t, data, names)."""
    import numpy as np
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no data file at {path}")
    if path.suffix.lower() == ".npz":
        with np.load(path) as arrays:
            missing = [k for k in ("t", "u") if k not in arrays]
            if missing:
                raise ValueError(f"{path} lacks the array(s) {missing}; an NPZ needs `t` "
                                 f"(times) and `u` (states, shape (len(t), n)); it has "
                                 f"{sorted(arrays)}")
            t, u = arrays["t"], arrays["u"]
        u = u.reshape(len(u), -1) if u.ndim == 1 else u
        names = state_names or [f"u{i + 1}" for i in range(u.shape[-1])]
        return t, u, names
    if path.suffix.lower() != ".csv":
        raise ValueError(f"cannot read {path.name}: give a .csv (header row: t, states...) "
                         f"or an .npz (arrays t and u)")
    table = np.genfromtxt(path, delimiter=",", names=True, dtype=np.float64,
                          deletechars="", encoding="utf-8")
    columns = list(table.dtype.names or [])
    time = next((c for c in columns if c.strip().lower() in ("t", "time")), None)
    if time is None:
        raise ValueError(f"{path} has no time column: its header must name one `t` or "
                         f"`time`; it has {columns}")
    others = [c for c in columns if c != time]
    if state_names is not None:
        missing = [n for n in state_names if n not in others]
        if missing:
            raise ValueError(f"{path} has no column for the state(s) {missing}; its columns "
                             f"are {columns}")
        others = list(state_names)
    t = table[time].reshape(-1)
    u = np.stack([table[c].reshape(-1) for c in others], axis=-1)
    return t, u, others


def summary(results: dict) -> str:
    """A few lines for the terminal: the discovered equations and how they compare."""
    names = results.get("state_names") or [f"u{i + 1}" for i in
                                            range(len(results["discovered"]["equations"]))]
    lines = [f"d{n}/dt = {eq}" for n, eq in zip(names, results["discovered"]["equations"])]
    if "recovered" in results:
        lines.append(f"structure recovered: {'yes' if results['recovered'] else 'no'}")
    if "oracle" in results:
        coef = ", ".join(f"{v:.4g}" for v in results["discovered"]["coefficients"].values())
        best = ", ".join(f"{v:.4g}" for v in results["oracle"]["coefficients"].values())
        lines.append(f"coefficients {coef} (oracle refit of the true form: {best}; truth: "
                     f"{', '.join(results['truth'])})")
    extra = results.get("extrapolation")
    if extra:
        a, b = extra["window"]
        lines.append(f"relative L2 error on t in [{a:g}, {b:g}]: {_fmt(extra['discovered'])} "
                     f"(oracle {_fmt(extra['oracle'])})")
    return "\n".join(lines)


class PipelineError(RuntimeError):
    """A stage of the pipeline failed; the report folder says which and why."""


def run(problem: str | DiscoveryProblem = "lotka_volterra", *, noise: float = 0.05,
        seed: int = 0, out: str | Path = "pyude-report", t=None, data=None,
        adam_iters: int = 100, lbfgs_iters: int = 20, collocation_iters: int = 1000,
        adam_lr: float = 1e-3, backend: str = "sindy", refit_iters: int = 50,
        per_target: int = 4, parsimony: float = 6.0, progress: bool = True,
        plots: bool = True) -> dict:
    """Run the whole pipeline and write the report folder. With `t` and `data` given they
    replace the problem's simulated observations (the problem still supplies the known
    physics, the network shape and, when the data are its own, the truth). `parsimony` is
    the BIC margin an extra term must win by (see `select_structure`).

    Raises ValueError for bad data before any work, and `PipelineError` when a stage fails
    (the UDE fit diverges, no structure can be refit); `report.md` and `results.json` then
    say which stage failed and why."""
    spec = load_problem(problem)
    _check_requirements(backend)
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
                  backend="native", discovery=backend, parsimony=parsimony,
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
                         backend=backend, degree=spec.degree, seed=seed)
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

    from .discovery import BACKENDS
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
    from . import __version__
    return dict(pyude=__version__, python=platform.python_version(), torch=torch.__version__,
                sympy=sympy.__version__)


def _failure_report(r: dict) -> str:
    return "\n".join([f"# pyude discovery report: {r['problem']}", "",
                      f"**Failed in the {r['failed']['stage']} stage** after "
                      f"{r['seconds']:.1f} s:", "", f"    {r['failed']['message']}", "",
                      f"seed {r['seed']}, backend {r['backend']}, symbolic regression by "
                      f"{r['discovery']}.", "", f"Versions: {r['versions']}", ""])


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


def _results(spec, fitted, found, model, loss, oracle, oracle_loss, trials) -> dict:
    equations = model.equations()
    out = dict(
        fit=dict(best_loss=fitted.best_loss, iterations=len(fitted.losses),
                 stopped=fitted.stopped, seconds=fitted.seconds),
        network_regression={k: str(v.expr) for k, v in found.selected.items()},
        discovered=dict(equations=[str(e) for e in equations],
                        latex=[sympy.latex(e) for e in equations],
                        network_terms=[str(e) for e in model.network_terms()],
                        terms=[_coefficient_terms(e) for e in model.equations(None)], loss=loss,
                        coefficients={k: model.p[k] for k in model.coefficients},
                        u0=model.u0.tolist()),
        structures_tried=[dict(bic=b, loss=lo, equations=[str(e) for e in eqs])
                          for b, lo, eqs in trials[:10]],
        extrapolation={},
    )
    if oracle is not None:
        out["oracle"] = dict(equations=[str(e) for e in oracle.equations()],
                             network_terms=[str(e) for e in oracle.network_terms()],
                             loss=oracle_loss,
                             coefficients={k: oracle.p[k] for k in oracle.coefficients},
                             u0=oracle.u0.tolist())
        out["truth"] = [str(e) for e in spec.true_terms]
        out["true_u0"] = list(spec.u0)
    return out


def _report(r: dict, with_plots: bool) -> str:
    t = r["timings"]
    source = (f"simulated, Gaussian noise of {r['noise']:.2%} of each state's mean"
              if r["noise"] is not None else "from the given data")
    lines = [f"# pyude discovery report: {r['problem']}", "",
             f"Data {source}; seed {r['seed']}; backend {r['backend']}; symbolic regression by "
             f"{r['discovery']}. {r['seconds']:.1f} s in all (UDE fit {t['fit']:.1f} s, "
             f"regression {t['discover']:.1f} s, structure search and refits "
             f"{t['refit']:.1f} s).", ""]
    if "recovered" in r:
        lines += [f"**Structure recovered: {'yes' if r['recovered'] else 'no'}** (exactly the "
                  f"true model's terms, the known physics untouched).", ""]
    lines += ["## Discovered model", ""]
    names = r.get("state_names") or [f"u_{i + 1}" for i in range(len(r["discovered"]["latex"]))]
    lines += [f"$$\\dot {sympy.latex(sympy.Symbol(n))} = {eq}$$"
              for n, eq in zip(names, r["discovered"]["latex"])]
    oracle = r.get("oracle")
    head = ["", "discovered, refit"] + (["oracle: the true form refit to the same data",
                                         "truth"] if oracle else [])
    lines += ["", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for j, term in enumerate(r["discovered"]["network_terms"]):
        row = [f"network term {j + 1}", f"${_latex(term)}$"]
        if oracle:
            row += [f"${_latex(oracle['network_terms'][j])}$", f"${_latex(r['truth'][j])}$"]
        lines.append("| " + " | ".join(row) + " |")
    rows = [["data MSE", f"{r['discovered']['loss']:.4g}"],
            ["initial state (estimated)", _vector(r["discovered"]["u0"])]]
    if oracle:
        rows[0] += [f"{oracle['loss']:.4g}", ""]
        rows[1] += [_vector(oracle["u0"]), _vector(r["true_u0"])]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    extra = r["extrapolation"]
    if extra:
        a, b = extra["window"]
        lines.append(f"| relative L2 error against the truth, t in [{a:g}, {b:g}] | "
                     f"{_fmt(extra['discovered'])} | {_fmt(extra['oracle'])} | |")
    fit = r["fit"]
    lines += ["", "## UDE fit", "", f"Best trajectory MSE {fit['best_loss']:.4g} after "
              f"{fit['iterations']} iterations (collocation, Adam, LBFGS)"
              + (f"; {fit['stopped']}" if fit["stopped"] else "") + ".",
              "", "Sparse regression on the network's outputs: "
              + "; ".join(f"{k} = {v}" for k, v in r["network_regression"].items()) + ".",
              "", "## Structures tried (best first)", "",
              "BIC of the screening refits through the ODE (rtol 1e-5, coefficients and "
              f"initial state); the fewest coefficients within {r['parsimony']:g} BIC units "
              "of the best "
              "win, then the lower BIC; the chosen one is refit at rtol 1e-7.", ""]
    lines += [f"- BIC {c['bic']:.1f}, MSE {c['loss']:.4g}: {', '.join(c['equations'])}"
              for c in r["structures_tried"]]
    if with_plots:
        lines += ["", "## Plots", "", "![fit](fit.png)", "", "![terms](terms.png)"]
        if extra:
            lines += ["", "![extrapolation](extrapolation.png)"]
    lines += ["", f"Versions: {r['versions']}", ""]
    return "\n".join(lines)


def _vector(values) -> str:
    return "(" + ", ".join(f"{v:.4g}" for v in values) + ")"


def _latex(expr: str) -> str:
    return sympy.latex(sympy.sympify(expr))


def _fmt(value) -> str:
    return f"{value:.2%}" if isinstance(value, float) else str(value)


def _plots(out, spec, t, data, ude, net, model, states, times, ref, disc):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    dense = torch.linspace(float(t[0]), float(t[-1]), states.shape[0], dtype=torch.float64)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for i, name in enumerate(spec.state_names):
        ax.plot(t, data[:, i], "o", ms=3, label=f"{name} data")
        ax.plot(dense, states[:, i], label=f"{name} UDE fit")
    ax.set_xlabel("t")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "fit.png", dpi=110)
    plt.close(fig)

    from .symbolic import to_torch
    symbols = [sympy.Symbol(n, real=True) for n in spec.state_names]

    def along(expr):
        value = to_torch([expr], symbols)(*states.unbind(-1))[0]
        return torch.as_tensor(value).expand(len(dense))

    fig, axes = plt.subplots(1, spec.n_network_outputs,
                             figsize=(4.5 * spec.n_network_outputs, 3.5), squeeze=False)
    with torch.no_grad():
        learned = net(states)
    found = model.network_terms(None)
    for j, ax in enumerate(axes[0]):
        ax.plot(dense, learned[:, j], label="network")
        ax.plot(dense, along(found[j]), "--", label="discovered")
        if spec.true_terms and times is not None:
            ax.plot(dense, along(spec.true_terms[j]), ":", label="truth")
        ax.set_title(f"network term {j + 1} along the fitted trajectory", fontsize=9)
        ax.set_xlabel("t")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "terms.png", dpi=110)
    plt.close(fig)
    if times is None:
        return

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
