"""Every candidate of a structure search as one model: each network output becomes the sum
of the terms its candidates use, each term with its own coefficient. A candidate sets the
coefficients of its own terms and holds the others at zero, so the compiled backend builds
one model (right-hand side, Jacobian, vector-Jacobian product) for the whole search instead
of one per candidate: a compile costs about a second, a candidate's refit a tenth of it."""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import sympy

from ._model import (DiscoveredModel, _as_expression, assembled, fresh_name,
                     in_model_symbols, traced_ude)


def _monomial(term: sympy.Expr, variables: list[sympy.Symbol]) -> sympy.Expr | None:
    """The monomial of a term `number * monomial` (non-negative whole powers of the
    states and t), or None for any other form. Only monomials: a term held at zero must
    stay zero wherever the states go, and 0 * sqrt(x) at x < 0 (or 0 * log(x), 0 / x) is
    NaN, which would break every other candidate solved through the library."""
    number, rest = term.as_coeff_Mul()
    if not number.is_Number or rest.atoms(sympy.Float) or \
            not rest.free_symbols <= set(variables):
        return None
    if rest != 1 and not (rest.is_polynomial(*variables)
                          and sympy.Poly(rest, *variables).is_monomial):
        return None
    return rest


def library_terms(expr: sympy.Expr, variables: list[sympy.Symbol]) -> list[sympy.Expr] | None:
    """The monomials of a candidate expression `sum number_i * monomial_i` in `variables`,
    or None when it is not of that form."""
    out = []
    for term in sympy.Add.make_args(sympy.expand(expr)):
        monomial = _monomial(term, variables)
        if monomial is None:
            return None
        out.append(monomial)
    return out


class TermLibrary:
    """The union of the candidates' terms per network output, as one model whose
    coefficients k1..kN (one per output and term) are all parameters.

    `f` and `p` (the known parameters and every coefficient at zero) are what a candidate's
    solve runs; `slots_of` maps a candidate's coefficients onto the library's. Candidates
    that are not sums of numbers times monomials (non-negative whole powers of the states
    and t) keep their own model."""

    def __init__(self, f_ude: Callable, state_names: Sequence[str], p: Mapping[str, float],
                 candidates: Sequence[Sequence[sympy.Expr]]):
        traced, p = traced_ude(f_ude, state_names, p, len(candidates))
        self._slot: dict[tuple[int, sympy.Expr], str] = {}
        subs, coefficients = {}, {}
        taken = {*state_names, *p}
        for j, (out, pool) in enumerate(zip(traced.nn_outputs, candidates)):
            total = sympy.Integer(0)
            variables = [*traced.states, traced.t]
            for expr in pool:
                monomials = library_terms(in_model_symbols(_as_expression(expr), variables),
                                          variables)
                for monomial in monomials or []:
                    if (j, monomial) in self._slot:
                        continue
                    name = fresh_name("k", taken)
                    self._slot[(j, monomial)] = name
                    coefficients[name] = 0.0
                    total += sympy.Symbol(name, real=True) * monomial
            subs[out] = total
        self._model: DiscoveredModel = assembled(traced, p, subs, coefficients)

    @property
    def f(self) -> Callable:
        return self._model.f

    @property
    def p(self) -> dict[str, float]:
        return dict(self._model.p)

    @property
    def size(self) -> int:
        """The number of library coefficients."""
        return len(self._slot)

    def slots_of(self, model: DiscoveredModel) -> dict[str, str] | None:
        """For each coefficient of `model` (a candidate built by `discovered_model`), the
        library coefficient of the same output and term; None when a term is not in the
        library or is not a single coefficient times a monomial."""
        own = {sympy.Symbol(name, real=True) for name in model.coefficients}
        slots = {}
        for j, expr in enumerate(model.terms):
            for term in sympy.Add.make_args(expr):
                coefficient = term.free_symbols & own
                if len(coefficient) != 1:
                    return None
                (c,) = coefficient
                monomial = term / c
                if monomial.free_symbols & own or (j, monomial) not in self._slot \
                        or c.name in slots:
                    return None
                slots[c.name] = self._slot[(j, monomial)]
        return slots if set(slots) == set(model.coefficients) else None

