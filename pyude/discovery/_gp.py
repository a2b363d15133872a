"""Genetic-programming backends: PySR (Julia) and pyoperon, both imported on first use."""

from __future__ import annotations

import re

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
    """PySR's `sympy_format` (a sympy expression in plain symbols of the variable names) in
    pyude's real state symbols. Text is refused: pyude parses no text into expressions."""
    if not isinstance(value, sympy.Basic):
        raise TypeError(f"PySR returned {type(value).__name__} {value!r} where a sympy "
                        f"expression was expected (its `sympy_format` column)")
    return in_model_symbols(value, list(symbols.values()))


# what pyoperon's model strings are made of: numbers, its variables X1.., arithmetic and
# the functions below; anything else is refused before the text is read as sympy
_OPERON_TOKEN = re.compile(r"\s+|[-+*/^(),]|\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?"
                           r"|X\d+|exp|log|sin|cos|tan|tanh|sqrt|abs|pow")


def _operon_expr(text: str, symbols: dict[str, sympy.Symbol]) -> sympy.Expr:
    """pyoperon's model string as sympy, after checking that it holds nothing but numbers,
    X1.. and arithmetic (the text comes from operon, the names are pyude's: X1..Xn)."""
    pos = 0
    while pos < len(text):
        match = _OPERON_TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise ValueError(f"pyoperon returned a model pyude cannot read safely: {text!r} "
                             f"(unexpected text at {text[pos:pos + 20]!r})")
        pos = match.end()
    return sympy.sympify(text.replace("^", "**"), locals=dict(symbols))


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
            expr = _operon_expr(text, symbols)
            pred = np.asarray(reg.evaluate_model(entry["model"], X)).reshape(-1)
            cands.append(Equation(target, expr, int(sympy.count_ops(expr)),
                                  float(np.mean((pred - Y[:, j]) ** 2)), X.shape[0]))
        out[target] = sorted(cands, key=lambda eq: eq.complexity)
    return out
