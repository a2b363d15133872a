"""Candidate structures for each network output: sparse regression on the network's
outputs and small exhaustive fits by collocation, without the terms the known physics has."""

from __future__ import annotations

import itertools

import sympy
import torch

from ..discovery import discovered_model
from ..symbolic import trace


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
    from ..train import smoothed_derivatives
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
    from ..discovery._sindy import subset_candidates
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
