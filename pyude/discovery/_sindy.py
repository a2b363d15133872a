"""Sparse regression (SINDy, through pysindy) with a sparsity sweep."""

from __future__ import annotations

import warnings

import numpy as np
import sympy

from ._result import Equation


def library(X: np.ndarray, names: list[str], degree: int, trig: bool = False):
    """The candidate functions evaluated on X (samples, terms) and as sympy expressions:
    every monomial of the inputs up to `degree` (the constant first, in pysindy's
    PolynomialLibrary order), then with `trig` sin and cos of each input. The expressions
    are built from symbols, never parsed from text."""
    import itertools

    symbols = [sympy.Symbol(n, real=True) for n in names]
    columns, exprs = [], []
    for d in range(degree + 1):
        for combo in itertools.combinations_with_replacement(range(len(names)), d):
            columns.append(np.prod(X[:, list(combo)], axis=1) if combo else np.ones(len(X)))
            exprs.append(sympy.Mul(*[symbols[i] for i in combo]))
    if trig:
        for i, s in enumerate(symbols):
            columns += [np.sin(X[:, i]), np.cos(X[:, i])]
            exprs += [sympy.sin(s), sympy.cos(s)]
    return np.stack(columns, axis=1), exprs


def subset_candidates(X: np.ndarray, Y: np.ndarray, names: list[str], targets: list[str], *,
                      degree: int = 2, max_terms: int = 2) -> dict[str, list[Equation]]:
    """Every model with at most `max_terms` library terms, fitted by least squares: a small
    exhaustive search that sparse regression's greedy thresholding can miss when terms are
    nearly collinear along one trajectory."""
    import itertools

    theta, exprs = library(X, names, degree)
    out: dict[str, list[Equation]] = {}
    for j, target in enumerate(targets):
        y = Y[:, j]
        cands = []
        for k in range(1, max_terms + 1):
            for support in itertools.combinations(range(theta.shape[1]), k):
                cols = theta[:, support]
                coef = np.linalg.lstsq(cols, y, rcond=None)[0]
                loss = float(np.mean((cols @ coef - y) ** 2))
                expr = sympy.Add(*[sympy.Float(c, 6) * exprs[i] for c, i in zip(coef, support)])
                cands.append(Equation(target, expr, k, loss, len(y)))
        out[target] = sorted(cands, key=lambda eq: eq.bic)
    return out


def sindy_candidates(X: np.ndarray, Y: np.ndarray, names: list[str], targets: list[str], *,
                     degree: int = 3, trig: bool = False, thresholds=None,
                     ridge: float = 1e-5) -> dict[str, list[Equation]]:
    """For each target, the distinct sparse models that sequentially thresholded least squares
    finds over a sweep of thresholds (relative to the largest coefficient of the dense
    least-squares fit, its singular values below 1e-6 of the largest cut: with nearly
    collinear features, a conserved quantity say, the plain fit's coefficients are huge and
    every threshold would remove every term). When the sweep still finds nothing, the best
    single term is the candidate."""
    try:
        import pysindy as ps
    except ImportError as err:
        raise ImportError("the 'sindy' backend needs pysindy: pip install pyude[sindy]") from err

    theta, exprs = library(X, names, degree, trig)
    scale = np.abs(theta).max(axis=0)
    scale[scale == 0] = 1.0
    thetas = theta / scale                    # thresholds act on comparable coefficients
    sweep = np.geomspace(1e-4, 1.0, 25) if thresholds is None else np.asarray(thresholds)
    out: dict[str, list[Equation]] = {}
    for j, target in enumerate(targets):
        y = Y[:, j]
        seen: dict[tuple, Equation] = {}
        full = np.linalg.lstsq(thetas, y, rcond=1e-6)[0]
        for threshold in sweep:
            opt = ps.STLSQ(threshold=float(threshold) * np.abs(full).max(), alpha=ridge,
                           max_iter=50)
            with warnings.catch_warnings():
                # The top of the sweep removes every term; pysindy warns, we skip it.
                warnings.simplefilter("ignore", UserWarning)
                opt.fit(thetas, y[:, None])
            support = tuple(np.flatnonzero(opt.coef_[0]))
            if not support or support in seen:
                continue
            coef = np.linalg.lstsq(thetas[:, support], y, rcond=None)[0]
            loss = float(np.mean((thetas[:, support] @ coef - y) ** 2))
            expr = sympy.Add(*[sympy.Float(c / scale[i], 6) * exprs[i]
                               for c, i in zip(coef, support)])
            seen[support] = Equation(target, expr, len(support), loss, len(y))
        if not seen:
            fits = [(float(np.mean((thetas[:, [i]] @ np.linalg.lstsq(thetas[:, [i]], y,
                                                                     rcond=None)[0] - y)**2)), i)
                    for i in range(thetas.shape[1])]
            _, i = min(fits)
            c = np.linalg.lstsq(thetas[:, [i]], y, rcond=None)[0][0]
            seen[(i,)] = Equation(target, sympy.Float(c / scale[i], 6) * exprs[i], 1,
                                  min(fits)[0], len(y))
        out[target] = sorted(seen.values(), key=lambda eq: eq.complexity)
    return out
