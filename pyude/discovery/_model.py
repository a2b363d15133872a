"""Closing the loop: discovered expressions replace the network in the traced model, their
coefficients become parameters, and those are refit through the ODE."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import sympy
import torch

from ..symbolic import to_torch, trace
from ._names import check_names


@dataclass
class DiscoveredModel:
    """A plain model f(u, p, t) (no network) and its parameters: the known physical ones and
    the discovered coefficients c1..ck."""

    f: Callable
    p: dict[str, float]
    exprs: list[sympy.Expr]              # the right-hand side, coefficients as symbols
    coefficients: list[str]
    terms: list[sympy.Expr] = field(default_factory=list)   # what replaced nn1..nnm
    state_mse: list[float] = field(default_factory=list)    # per state, after `refit`
    u0: torch.Tensor | None = None      # the initial state of the last refit
    failure: str = ""                    # why the last refit gave up, when it did
    # A candidate of a structure search is solved through its search's `TermLibrary` (one
    # compiled model for every candidate); `slots` names the library coefficient that
    # stands for each of this model's own.
    library: Any = None                  # a `TermLibrary`, or None
    slots: dict[str, str] = field(default_factory=dict)

    def solve_form(self) -> tuple[Callable, dict[str, float], dict[str, str]]:
        """What a solve of this model runs: f, its parameter values, and the name in them
        of each of `p`'s (the model itself, or its library with the other terms at zero)."""
        if self.library is None:
            return self.f, dict(self.p), {k: k for k in self.p}
        names = {k: self.slots.get(k, k) for k in self.p}
        values = {**self.library.p, **{names[k]: v for k, v in self.p.items()}}
        return self.library.f, values, names

    def _values(self) -> dict:
        return {sympy.Symbol(k, real=True): v for k, v in self.p.items()}

    def network_terms(self, digits: int | None = 6) -> list[sympy.Expr]:
        """The expressions in place of the network's outputs, with the current values."""
        exprs = [sympy.expand(e.subs(self._values())) for e in self.terms]
        return exprs if digits is None else [sympy.N(e, digits) for e in exprs]

    def equations(self, digits: int | None = 6) -> list[sympy.Expr]:
        """The right-hand side with the current coefficient values, rounded to `digits`
        significant digits for display (None: the exact float values, for comparisons)."""
        exprs = [sympy.expand(e.subs(self._values())) for e in self.exprs]
        return exprs if digits is None else [sympy.N(e, digits) for e in exprs]


def fresh_name(prefix: str, taken: set[str]) -> str:
    """The first of prefix1, prefix2, ... not in `taken`, added to it."""
    k = 1
    while f"{prefix}{k}" in taken:
        k += 1
    taken.add(f"{prefix}{k}")
    return f"{prefix}{k}"


def _with_coefficients(expr: sympy.Expr, taken: set[str]
                       ) -> tuple[sympy.Expr, dict[str, float]]:
    """Each Float in `expr` becomes a symbol c1, c2, ... (the first names not in `taken`,
    which is updated) with its value."""
    values: dict[str, float] = {}

    def swap(node):
        if isinstance(node, sympy.Float):
            name = fresh_name("c", taken)
            values[name] = float(node)
            return sympy.Symbol(name, real=True)
        if node.args:
            return node.func(*[swap(a) for a in node.args])
        return node

    return swap(expr), values


def in_model_symbols(expr: sympy.Expr, symbols: list[sympy.Symbol]) -> sympy.Expr:
    """`expr` with its symbols matched to the model's by name (a plain `Symbol("x")` and
    the traced real `x` are different symbols to sympy: left as they are, the expression
    could not be evaluated and every refit would fail)."""
    by_name = {s.name: s for s in symbols}
    unknown = sorted(s.name for s in expr.free_symbols if s.name not in by_name)
    if unknown:
        raise ValueError(f"the expression {expr} uses {', '.join(unknown)}, which "
                         f"{'is' if len(unknown) == 1 else 'are'} not a state of the model "
                         f"({', '.join(by_name)}): write the terms in the state names, with "
                         f"numbers as coefficients")
    return expr.xreplace({s: by_name[s.name] for s in expr.free_symbols})


def _as_expression(value) -> sympy.Expr:
    """A replacement for a network output: a sympy expression or a plain number. Text is
    refused (parsing it would run it): build expressions from `sympy.Symbol`s."""
    if isinstance(value, sympy.Basic):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return sympy.Integer(value) if isinstance(value, int) else sympy.Float(value)
    raise TypeError(f"the expressions must be sympy expressions (or numbers), built from "
                    f"symbols such as sympy.Symbol('x', real=True); got "
                    f"{type(value).__name__} {value!r}")


def discovered_model(f_ude: Callable, state_names: Sequence[str], p: Mapping[str, float],
                     replacements: Mapping[str, sympy.Expr] | Sequence[sympy.Expr], *,
                     library=None) -> DiscoveredModel:
    """Trace the UDE `f_ude(u, p, t, nn)` with the states named as in the discovered
    expressions and put the expressions in place of the network's outputs nn1..nnm.
    With `library` (a structure search's `TermLibrary`), a model whose terms are all in it
    is solved through the library's one compiled model."""
    exprs = [_as_expression(e) for e in (replacements.values()
                                         if isinstance(replacements, Mapping) else replacements)]
    traced, p = traced_ude(f_ude, state_names, p, len(exprs))
    subs, coefficients = {}, {}
    taken = {*state_names, *p}
    for out, expr in zip(traced.nn_outputs, exprs):
        expr = in_model_symbols(expr, [*traced.states, traced.t])
        with_coef, values = _with_coefficients(expr, taken)
        subs[out] = with_coef
        coefficients.update(values)
    model = assembled(traced, p, subs, coefficients)
    if library is not None:
        slots = library.slots_of(model)
        if slots is not None:
            model.library, model.slots = library, slots
    return model


def traced_ude(f_ude: Callable, state_names: Sequence[str], p: Mapping[str, float],
               n_outputs: int):
    """The UDE traced with its states named, and its parameters (names checked)."""
    state_names = check_names(state_names, "state")
    p = dict(p)
    check_names(p, "parameter", taken=state_names, taken_as="a state's name")
    return trace(f_ude, len(state_names), dict(p), nn_outputs=n_outputs,
                 state_names=state_names), p


def assembled(traced, p: dict[str, float], subs: dict, coefficients: dict[str, float]
              ) -> DiscoveredModel:
    """The traced UDE with `subs` in place of its network outputs (expressions in the
    states and the coefficient symbols named in `coefficients`) as a plain model."""
    rhs = [e.subs(subs) for e in traced.exprs]
    names = [*traced.param_names, *coefficients]
    symbols = [*traced.states, *[sympy.Symbol(n, real=True) for n in names], traced.t]
    evaluate = to_torch(rhs, symbols)

    def f(u, params, t):
        return evaluate(*list(u), *[params[n] for n in names], t)

    return DiscoveredModel(f, {**p, **coefficients}, rhs, list(coefficients),
                           [subs[out] for out in traced.nn_outputs if out in subs])
