"""Equation discovery: closed forms for learned network terms, as sympy expressions.

Backends: "sindy" (pysindy: sparse regression over polynomial, optionally trigonometric,
libraries with a sparsity sweep), "pysr" (PySR, needs Julia), "operon" (pyoperon, genetic
programming); "auto" takes PySR when Julia is there, else SINDy. Every backend returns
`Equation`s (sympy expression, complexity, loss); the simplest model with the lowest BIC is
selected per target, and all candidates are kept for a refit through the ODE.
"""

from __future__ import annotations

from typing import Sequence

from ._model import DiscoveredModel as DiscoveredModel
from ._model import discovered_model as discovered_model
from ._library import TermLibrary as TermLibrary
from ._refit import refit as refit
from ._names import check_names as check_names
from ._result import DiscoveryResult as DiscoveryResult
from ._result import Equation as Equation
from ._result import check_xy, select_by_bic

BACKENDS = ("auto", "sindy", "pysr", "operon")
DEFAULT_DEGREE = 3
"""The polynomial library's degree wherever none is given (`discover`, `DiscoveryProblem`,
the CLI's --degree)."""


def discover(X, Y, *, names: Sequence[str] | None = None, targets: Sequence[str] | None = None,
             backend: str = "auto", degree: int = DEFAULT_DEGREE, trig: bool = False,
             thresholds=None, seed: int = 0, **backend_options) -> DiscoveryResult:
    """Find closed forms Y_j = g_j(X) for each target column.

    Arguments:
        X: inputs (samples, n_inputs), e.g. the states along a fitted trajectory.
        Y: targets (samples, n_targets), e.g. the network's outputs at those states.
        names, targets: names of the inputs (default x1..) and targets (default nn1..):
            identifiers, distinct, none that sympy or Julia reserves (see `check_names`).
        backend: "auto", "sindy", "pysr" or "operon".
        degree, trig, thresholds: SINDy's library and sparsity sweep.
        seed: the random state of the genetic-programming backends.
        **backend_options: passed to PySRRegressor or pyoperon's SymbolicRegressor.

    Returns:
        a `DiscoveryResult` with candidates and the BIC-selected equation per target.
    """
    X, Y = check_xy(X, Y)
    names = check_names(names, "input") if names is not None else \
        [f"x{i + 1}" for i in range(X.shape[1])]
    targets = [f"nn{j + 1}" for j in range(Y.shape[1])] if targets is None else \
        list(targets)
    if len(set(targets)) != len(targets) or not all(isinstance(n, str) for n in targets):
        raise ValueError(f"targets must be distinct strings; got {targets}")
    if len(names) != X.shape[1] or len(targets) != Y.shape[1]:
        raise ValueError(f"{len(names)} names for {X.shape[1]} inputs, {len(targets)} targets "
                         f"for {Y.shape[1]} columns")
    if backend not in BACKENDS:
        raise ValueError(f"unknown discovery backend {backend!r}; choose one of {BACKENDS}")
    if not isinstance(degree, int) or isinstance(degree, bool) or not 1 <= degree <= 6:
        raise ValueError(f"degree must be an integer from 1 to 6 (the polynomial library's "
                         f"highest degree); got {degree!r}")
    if backend == "auto":
        backend = _auto()
    if backend == "sindy":
        from ._sindy import sindy_candidates
        candidates = sindy_candidates(X, Y, names, targets, degree=degree, trig=trig,
                                      thresholds=thresholds)
    elif backend == "pysr":
        from ._gp import pysr_candidates
        candidates = pysr_candidates(X, Y, names, targets, seed=seed, **backend_options)
    else:
        from ._gp import operon_candidates
        candidates = operon_candidates(X, Y, names, targets, seed=seed, **backend_options)
    empty = [t for t, c in candidates.items() if not c]
    if empty:
        raise RuntimeError(f"{backend} found no candidate for {empty}")
    selected = {t: select_by_bic(c) for t, c in candidates.items()}
    return DiscoveryResult(backend, candidates, selected)


def _auto() -> str:
    import importlib.util

    from .. import julia
    if julia.available() and importlib.util.find_spec("pysr") is not None:
        return "pysr"
    return "sindy"
