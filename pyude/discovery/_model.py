"""Closing the loop: discovered expressions replace the network in the traced model, their
coefficients become parameters, and those are refit through the ODE."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import sympy
import torch

from .._errors import SolverError
from .._model import Params
from .._problem import ODEProblem
from .._solve import solve
from ..symbolic import to_torch, trace


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


def _with_coefficients(expr: sympy.Expr, start: int) -> tuple[sympy.Expr, dict[str, float]]:
    """Each Float in `expr` becomes a symbol c<start>, c<start+1>, ... with its value."""
    values: dict[str, float] = {}

    def swap(node):
        if isinstance(node, sympy.Float):
            name = f"c{start + len(values)}"
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


def discovered_model(f_ude: Callable, state_names: Sequence[str], p: Mapping[str, float],
                     replacements: Mapping[str, sympy.Expr] | Sequence[sympy.Expr]
                     ) -> DiscoveredModel:
    """Trace the UDE `f_ude(u, p, t, nn)` with the states named as in the discovered
    expressions and put the expressions in place of the network's outputs nn1..nnm."""
    exprs = list(replacements.values()) if isinstance(replacements, Mapping) else \
        list(replacements)
    traced = trace(f_ude, len(state_names), dict(p), nn_outputs=len(exprs),
                   state_names=list(state_names))
    subs, coefficients = {}, {}
    for out, expr in zip(traced.nn_outputs, exprs):
        expr = in_model_symbols(sympy.sympify(expr), [*traced.states, traced.t])
        with_coef, values = _with_coefficients(expr, len(coefficients) + 1)
        subs[out] = with_coef
        coefficients.update(values)
    rhs = [e.subs(subs) for e in traced.exprs]
    names = [*traced.param_names, *coefficients]
    symbols = [*traced.states, *[sympy.Symbol(n, real=True) for n in names], traced.t]
    evaluate = to_torch(rhs, symbols)

    def f(u, params, t):
        return evaluate(*list(u), *[params[n] for n in names], t)

    return DiscoveredModel(f, {**dict(p), **coefficients}, rhs, list(coefficients),
                           [subs[out] for out in traced.nn_outputs[:len(exprs)]])


def refit(model: DiscoveredModel, t, data, *, trainable: Sequence[str] | None = None,
          solver=None, rtol: float = 1e-7, atol: float = 1e-7, iters: int = 50,
          fit_u0: bool = False) -> float:
    """Refit the named parameters (default: the discovered coefficients) through the ODE by
    LBFGS on the mean squared error to `data` at `t`; updates `model.p` and
    `model.state_mse` (each state's own mean squared error) and returns the final loss
    (inf when every trial solve failed). The initial state is the first observation, or
    with `fit_u0` a parameter too, started there (the first observation is as noisy as the
    rest); `model.u0` keeps it."""
    from ..solvers import Tsit5

    t = torch.as_tensor(t, dtype=torch.float64)
    data = torch.as_tensor(data, dtype=torch.float64)
    names = list(model.coefficients if trainable is None else trainable)
    values = {k: torch.tensor(float(v), dtype=torch.float64, requires_grad=k in names)
              for k, v in model.p.items()}
    u0 = data[0].clone().requires_grad_(fit_u0)
    leaves = [values[k] for k in names] + ([u0] if fit_u0 else [])

    def loss_fn():
        prob = ODEProblem(model.f, u0, (float(t[0]), float(t[-1])), Params(values))
        sol = solve(prob, solver or Tsit5(), saveat=t, rtol=rtol, atol=atol, maxiters=20_000)
        return ((sol.u - data) ** 2).reshape(len(t), -1, data.shape[-1]).mean(dim=(0, 1))

    start = {k: float(v) for k, v in model.p.items()}
    opt = torch.optim.LBFGS(leaves, lr=1.0, max_iter=10, max_eval=15,
                            line_search_fn="strong_wolfe", tolerance_change=0.0)

    def closure():
        opt.zero_grad()
        try:
            loss = loss_fn().mean()
        except (SolverError, ValueError):
            # a trial point where the model blows up (or leaves the finite numbers): a huge
            # loss with no slope sends the line search back
            for leaf in leaves:
                leaf.grad = torch.zeros_like(leaf)
            return torch.tensor(1e30, dtype=torch.float64)
        loss.backward()
        return loss

    try:
        # in rounds of ten iterations, until a round improves the loss by less than a
        # millionth of itself (about the solver's own noise at rtol 1e-5)
        previous = math.inf
        for _ in range(max(1, math.ceil(iters / 10))):
            before = float(opt.step(closure).detach())
            if previous - before < 1e-6 * abs(before):
                break
            previous = before
        with torch.no_grad():
            per_state = loss_fn()
        final = float(per_state.mean())
    except (SolverError, ValueError):
        final = float("inf")
    if not all(bool(torch.isfinite(v).all()) for v in [*values.values(), u0]) \
            or not final < 1e29:
        model.p.update(start)
        model.state_mse = []
        return float("inf")
    model.p.update({k: float(v.detach()) for k, v in values.items()})
    model.state_mse = per_state.tolist()
    model.u0 = u0.detach()
    return final
