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


def _with_coefficients(expr: sympy.Expr, taken: set[str]
                       ) -> tuple[sympy.Expr, dict[str, float]]:
    """Each Float in `expr` becomes a symbol c1, c2, ... (the first names not in `taken`,
    which is updated) with its value."""
    values: dict[str, float] = {}

    def swap(node):
        if isinstance(node, sympy.Float):
            k = 1
            while f"c{k}" in taken:
                k += 1
            name = f"c{k}"
            taken.add(name)
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
                     replacements: Mapping[str, sympy.Expr] | Sequence[sympy.Expr]
                     ) -> DiscoveredModel:
    """Trace the UDE `f_ude(u, p, t, nn)` with the states named as in the discovered
    expressions and put the expressions in place of the network's outputs nn1..nnm."""
    exprs = [_as_expression(e) for e in (replacements.values()
                                         if isinstance(replacements, Mapping) else replacements)]
    state_names = check_names(state_names, "state")
    p = dict(p)
    check_names(p, "parameter", taken=state_names, taken_as="a state's name")
    traced = trace(f_ude, len(state_names), dict(p), nn_outputs=len(exprs),
                   state_names=state_names)
    subs, coefficients = {}, {}
    taken = {*state_names, *p}
    for out, expr in zip(traced.nn_outputs, exprs):
        expr = in_model_symbols(expr, [*traced.states, traced.t])
        with_coef, values = _with_coefficients(expr, taken)
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


class LeftRegion(Exception):
    """A trial solve left the region a plausible model stays in."""


def guarded(f: Callable, bound: float) -> Callable:
    """`f` that raises `LeftRegion` as soon as it is called at a state with a component
    beyond `bound` in size: a candidate that blows up is abandoned at once, instead of
    crawling towards its singularity at ever smaller steps."""
    def f_in_region(u, p, t):
        components = u if isinstance(u, torch.Tensor) else torch.stack(
            [torch.as_tensor(c) for c in u])
        size = float(components.detach().abs().max())
        if not size <= bound:
            raise LeftRegion(f"left the plausible region (a state reached {size:.3g}, "
                             f"beyond {bound:.3g}) at t = {float(t):.4g}")
        return f(u, p, t)
    return f_in_region


def refit(model: DiscoveredModel, t, data, *, trainable: Sequence[str] | None = None,
          solver=None, rtol: float = 1e-7, atol: float = 1e-7, iters: int = 50,
          fit_u0: bool = False, maxiters: int = 20_000, bound: float | None = None) -> float:
    """Refit the named parameters (default: the discovered coefficients) through the ODE by
    LBFGS on the mean squared error to `data` at `t`; updates `model.p` and
    `model.state_mse` (each state's own mean squared error) and returns the final loss
    (inf when every trial solve failed). The initial state is the first observation, or
    with `fit_u0` a parameter too, started there (the first observation is as noisy as the
    rest); `model.u0` keeps it.

    The budget: each solve takes at most `maxiters` steps, and with `bound` a solve whose
    state grows beyond it in size is stopped at once. A trial point that breaks either is
    a failed point for the line search; when the starting point does, the refit gives up
    at once, returns inf and says why in `model.failure`."""
    from ..solvers import Tsit5

    model.failure = ""
    f = model.f if bound is None else guarded(model.f, bound)
    t = torch.as_tensor(t, dtype=torch.float64)
    data = torch.as_tensor(data, dtype=torch.float64)
    names = list(model.coefficients if trainable is None else trainable)
    values = {k: torch.tensor(float(v), dtype=torch.float64, requires_grad=k in names)
              for k, v in model.p.items()}
    u0 = data[0].clone().requires_grad_(fit_u0)
    leaves = [values[k] for k in names] + ([u0] if fit_u0 else [])

    def loss_fn():
        prob = ODEProblem(f, u0, (float(t[0]), float(t[-1])), Params(values))
        sol = solve(prob, solver or Tsit5(), backend="native",
                    saveat=t, rtol=rtol, atol=atol, maxiters=maxiters)
        return ((sol.u - data) ** 2).reshape(len(t), -1, data.shape[-1]).mean(dim=(0, 1))

    start = {k: float(v) for k, v in model.p.items()}
    opt = torch.optim.LBFGS(leaves, lr=1.0, max_iter=10, max_eval=15,
                            line_search_fn="strong_wolfe", tolerance_change=0.0)

    calls = 0

    def closure():
        nonlocal calls
        calls += 1
        opt.zero_grad()
        try:
            loss = loss_fn().mean()
        except (SolverError, ValueError, LeftRegion) as err:
            if calls == 1:
                # the starting point itself: nothing to go back to
                raise _GiveUp(_reason(err, maxiters)) from err
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
    except _GiveUp as err:
        model.failure = str(err)
        final = float("inf")
    except (SolverError, ValueError, LeftRegion) as err:
        model.failure = _reason(err, maxiters)
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


class _GiveUp(Exception):
    pass


def _reason(err: Exception, maxiters: int) -> str:
    if isinstance(err, LeftRegion):
        return str(err)
    if isinstance(err, SolverError) and "MaxIters" in str(getattr(err, "retcode", "")):
        return f"needed more than {maxiters} steps"
    return f"the solve failed: {str(err).splitlines()[0][:120]}"
