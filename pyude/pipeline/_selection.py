"""Choosing one structure: refits through the ODE scored by BIC, with a parsimony margin and
a check that the chosen model stays bounded past the data."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import sympy
import torch

from .._errors import SolverError
from .._problem import ODEProblem
from .._solve import solve
from ..discovery import TermLibrary, discovered_model, refit
from ..discovery._refit import LeftRegion, check_bounded, guarded
from ..solvers import Tsit5
from ._candidates import _terms_of
from ._problems import DiscoveryProblem


@dataclass(frozen=True)
class SearchBudget:
    """What one screening refit may spend: at most `maxiters` steps a solve, and a solve
    whose state grows beyond `bound` in size is stopped at once (None: no bound). A
    candidate that breaks either from its starting point is abandoned and recorded as such.
    `budget_for` sizes both from the data and the fitted network's own solution."""

    maxiters: int = 20_000
    bound: float | None = None


def budget_for(data: torch.Tensor, network_steps: int, *, growth: float = 10.0,
               step_factor: int = 10) -> SearchBudget:
    """`growth` times the data's largest size, `step_factor` times the steps the fitted
    network's solution took over the data (at least 500)."""
    return SearchBudget(maxiters=max(500, step_factor * int(network_steps)),
                        bound=growth * float(data.abs().max()))


def _stays_bounded(problem, model, t, data, horizon: float = 3.0,
                   budget: SearchBudget = SearchBudget(), backend: str = "auto") -> bool:
    """A plausible model integrates over `horizon` times the observed span, or up to the
    problem's extrapolation horizon when that is further (the model is meant to be used
    there), and stays within ten times the observed range all along: a structure that
    blows up past the data is rejected. This looks only at the model, never at data beyond
    the training window."""
    t0 = float(t[0])
    t_end = max(t0 + horizon * float(t[-1] - t0), problem.t_extrapolate)
    limit = 10 * float(data.abs().max())
    f, values, _ = model.solve_form()
    prob = ODEProblem(guarded(f, limit), data[0], (t0, t_end), values)
    maxiters = int(budget.maxiters * max(1.0, (t_end - t0) / float(t[-1] - t0)))
    try:
        with torch.no_grad():
            sol = solve(prob, Tsit5(), backend=backend,
                        rtol=1e-6, atol=1e-6, throw=False, maxiters=maxiters,
                        saveat=torch.linspace(t0, t_end, 201, dtype=torch.float64))
        check_bounded(sol.u, limit)
    except LeftRegion:
        return False
    return sol.success


def _bic(model, per_state: int) -> float:
    """The Bayesian information criterion of a refit model under Gaussian noise with each
    state's own variance (the states' noise levels differ: pooling them would let the
    noisiest state decide every equation's terms)."""
    n = per_state * len(model.state_mse)
    return (per_state * sum(math.log(max(m, 1e-300)) for m in model.state_mse)
            + len(model.coefficients) * math.log(n))


def select_structure(problem, candidates, t, data, iters: int = 50, rtol: float = 1e-5,
                     parsimony: float = 6.0, *, budget: SearchBudget = SearchBudget(),
                     on_trial: Callable[[dict], None] | None = None, backend: str = "auto"):
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

    Each screening refit runs within `budget` (a candidate that leaves the plausible region
    or needs far more steps than the network is abandoned), and `on_trial` hears of every
    refit as it ends: a dict with `equations`, `bic`, `loss`, `abandoned` (the reason, or
    "") and `best` (the equations and BIC of the best so far).

    The fewest coefficients within `parsimony` BIC units of the best win (then the lower
    BIC): an extra term must be strongly supported (a difference of 6 or more, Kass and
    Raftery's "strong" evidence), since a small spurious term fitted to one noise
    realisation is the typical failure and the structure is what the user takes away.

    The refits solve on `backend`; where they compile, every candidate made of numbers
    times monomials is solved through one `TermLibrary` model, compiled once for the search.
    Returns the model, its loss and every structure refit, best BIC first."""
    per_target = list(candidates.values())
    library = _library(problem, per_target, backend)
    tried: dict[tuple[int, ...], tuple[float, float, object]] = {}
    best: list = [math.inf, None]
    shown: dict[int, tuple] = {}

    def score(choice: tuple[int, ...]) -> float:
        if choice not in tried:
            model = discovered_model(problem.ude, problem.state_names, problem.known_p,
                                     [pool[k].expr for pool, k in zip(per_target, choice)],
                                     library=library)
            try:
                loss = refit(model, t, data, iters=iters, rtol=rtol, atol=rtol, fit_u0=True,
                             maxiters=budget.maxiters, bound=budget.bound, backend=backend)
            except (SolverError, RuntimeError) as err:
                loss, model.failure = math.inf, f"the refit failed: {err}"
            bic = _bic(model, data.numel() // data.shape[-1]) if math.isfinite(loss) else math.inf
            tried[choice] = (bic, loss, model)
            if bic < best[0]:
                best[:] = [bic, model]
            if on_trial is not None:
                on_trial(_event(model, bic, loss, *best, shown))
        return tried[choice][0]

    def search(choice: tuple[int, ...]) -> None:
        changed = True
        while changed:
            changed = False
            for j, pool in enumerate(per_target):
                options = [choice[:j] + (k,) + choice[j + 1:] for k in range(len(pool))]
                best_option = min(options, key=score)
                if score(best_option) < score(choice):
                    choice, changed = best_option, True

    # from the best-ranked candidates, then from each target's first single term: the
    # simplest structures can sit in another valley of the BIC than the richer ones
    search(tuple(0 for _ in per_target))
    search(tuple(next((k for k, eq in enumerate(pool) if len(_terms_of(eq.expr)) == 1), 0)
                 for pool in per_target))
    trials = sorted((trial for trial in tried.values() if math.isfinite(trial[0])),
                    key=lambda trial: trial[0])
    if not trials:
        reasons = sorted({m.failure for _, _, m in tried.values() if m.failure})
        raise RuntimeError("no discovered structure could be refit through the ODE"
                           + (f" ({'; '.join(reasons[:3])})" if reasons else ""))
    preferred = sorted(trials, key=lambda trial: _parsimony_rank(trial, trials[0][0],
                                                                 parsimony))
    # the boundedness check costs a long solve: only down the ranking until one passes
    kept = next((trial for trial in preferred
                 if _stays_bounded(problem, trial[2], t, data, budget=budget,
                                   backend=backend)), None)
    if kept is None:
        raise RuntimeError("no discovered structure could be refit through the ODE and stay "
                           "bounded beyond the data")
    return kept[2], kept[1], [(b, lo, _shown(m, shown)[0]) for b, lo, m in trials]


def _library(problem, per_target, backend: str) -> TermLibrary | None:
    """The search's one compiled model, where the refits compile; None on torch, where a
    candidate evaluating every term of the library refits 2-3 times slower than alone."""
    import importlib.util
    if backend == "native" or importlib.util.find_spec("numba") is None:
        return None
    return TermLibrary(problem.ude, problem.state_names, problem.known_p,
                       [[eq.expr for eq in pool] for pool in per_target])


def _shown(model, shown: dict) -> tuple[list, list]:
    """A refit model's equations and network terms for display, worked out once (each is
    a sympy expansion; a search shows every model once and the best one many times)."""
    if id(model) not in shown:
        shown[id(model)] = (model.equations(), model.network_terms(), model)
    return shown[id(model)][:2]


def _event(model, bic: float, loss: float, best_bic: float, best_model, shown: dict) -> dict:
    """What `select_structure` tells `on_trial` about one refit."""
    abandoned = (model.failure or "no finite loss") if math.isinf(loss) else ""
    best = None if best_model is None else dict(
        bic=best_bic, equations=[str(e) for e in _shown(best_model, shown)[1]])
    return dict(equations=[str(e) for e in _shown(model, shown)[0]], bic=bic, loss=loss,
                abandoned=abandoned, best=best)


def _parsimony_rank(trial, best_bic: float, parsimony: float) -> tuple:
    """Within `parsimony` of the best BIC: fewest coefficients first, then the lower BIC;
    beyond it, by BIC alone."""
    bic, _, model = trial
    if bic <= best_bic + parsimony:
        return (0, len(model.coefficients), bic)
    return (1, 0, bic)


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

