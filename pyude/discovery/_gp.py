"""Genetic-programming backends: PySR (Julia) and pyoperon, both imported on first use."""

from __future__ import annotations

import numpy as np
import sympy

from ._model import in_model_symbols
from ._result import Equation


def pysr_candidates(X, Y, names, targets, *, seed=0, **options) -> dict[str, list[Equation]]:
    """PySR's hall of fame per target, in PySR's repeatable configuration."""
    try:
        # PySR starts Julia itself, with its own settings (pyude's SciML stack stays unloaded)
        import pysr
    except Exception as err:
        raise ImportError(f"the 'pysr' backend needs PySR and Julia: pip install pyude[pysr] "
                          f"({err})") from err
    settings = dict(niterations=40, binary_operators=["+", "-", "*", "/"],
                    unary_operators=["exp"], maxsize=15, parallelism="serial",
                    deterministic=True, random_state=seed, progress=False, verbosity=0,
                    temp_equation_file=True, precision=64)
    settings.update(options)
    symbols = {n: sympy.Symbol(n, real=True) for n in names}
    out = {}
    for j, target in enumerate(targets):
        model = pysr.PySRRegressor(**settings)
        model.fit(X, Y[:, j], variable_names=list(names))
        rows = model.equations_
        out[target] = [Equation(target, _in_symbols(row.sympy_format, symbols),
                                int(row.complexity), float(row.loss), X.shape[0])
                       for row in rows.itertuples()]
    return out


def _in_symbols(value, symbols: dict[str, sympy.Symbol]) -> sympy.Expr:
    """PySR's `sympy_format` (a sympy expression in plain symbols of the variable names,
    or its text) in pyude's real state symbols."""
    expr = value if isinstance(value, sympy.Basic) else sympy.sympify(str(value),
                                                                      locals=symbols)
    return in_model_symbols(expr, list(symbols.values()))


def operon_candidates(X, Y, names, targets, *, seed=0, **options) -> dict[str, list[Equation]]:
    """pyoperon's symbolic regressor per target (its Pareto front when available)."""
    try:
        from pyoperon.sklearn import SymbolicRegressor
    except ImportError as err:
        raise ImportError("the 'operon' backend needs pyoperon: pip install pyude[operon]") \
            from err
    symbols = {f"X{i + 1}": sympy.Symbol(n, real=True) for i, n in enumerate(names)}
    out = {}
    for j, target in enumerate(targets):
        reg = SymbolicRegressor(random_state=seed, **options)
        reg.fit(X, Y[:, j])
        front = getattr(reg, "pareto_front_", None) or [dict(model=reg.model_)]
        cands = []
        for entry in front:
            text = reg.get_model_string(entry["model"], 6)
            expr = sympy.sympify(text, locals=symbols)
            pred = np.asarray(reg.evaluate_model(entry["model"], X)).reshape(-1)
            cands.append(Equation(target, expr, int(sympy.count_ops(expr)),
                                  float(np.mean((pred - Y[:, j]) ** 2)), X.shape[0]))
        out[target] = sorted(cands, key=lambda eq: eq.complexity)
    return out
