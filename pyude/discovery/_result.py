"""Discovered equations as sympy expressions, whatever found them."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import sympy


@dataclass
class Equation:
    """One candidate closed form for one target."""

    target: str
    expr: sympy.Expr
    complexity: int          # terms (sparse regression) or expression size (genetic programming)
    loss: float              # mean squared error on the data it was fitted to
    n_samples: int

    @property
    def bic(self) -> float:
        """Bayesian information criterion of a Gaussian fit: n log(MSE) + k log(n)."""
        mse = max(self.loss, 1e-300)
        return self.n_samples * math.log(mse) + self.complexity * math.log(self.n_samples)

    def latex(self) -> str:
        return sympy.latex(self.expr)


@dataclass
class DiscoveryResult:
    """Candidates per target (simplest first) and the one chosen for each."""

    backend: str
    candidates: dict[str, list[Equation]] = field(default_factory=dict)
    selected: dict[str, Equation] = field(default_factory=dict)

    def exprs(self) -> dict[str, sympy.Expr]:
        return {name: eq.expr for name, eq in self.selected.items()}

    def __repr__(self) -> str:
        chosen = ", ".join(f"{k} = {v.expr}" for k, v in self.selected.items())
        return f"DiscoveryResult({self.backend}: {chosen})"


def select_by_bic(candidates: list[Equation]) -> Equation:
    return min(candidates, key=lambda eq: (eq.bic, eq.complexity))


def check_xy(X, Y) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X.detach().cpu() if hasattr(X, "detach") else X, dtype=np.float64)
    Y = np.asarray(Y.detach().cpu() if hasattr(Y, "detach") else Y, dtype=np.float64)
    if X.ndim != 2 or Y.ndim != 2 or X.shape[0] != Y.shape[0]:
        raise ValueError(f"X must be (samples, inputs) and Y (samples, targets) with the same "
                         f"samples; got {X.shape} and {Y.shape}")
    if X.shape[0] < 5:
        raise ValueError(f"need at least 5 samples to discover equations; got {X.shape[0]}")
    if not (np.isfinite(X).all() and np.isfinite(Y).all()):
        raise ValueError("X and Y must be finite; drop samples with NaN or Inf")
    return X, Y
