"""Tracing: run a model on sympy symbols to get its right-hand side as expressions."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import sympy
import torch

from .._model import Params


@dataclass
class SymbolicNN:
    """Stands in for the network under tracing: `nn(u)` returns output symbols nn1..nnm
    and remembers what it was called with."""

    n_outputs: int
    outputs: list[sympy.Symbol] = field(init=False)
    inputs: list[list[sympy.Expr]] = field(default_factory=list)

    def __post_init__(self):
        self.outputs = list(sympy.symbols(f"nn1:{self.n_outputs + 1}", real=True))

    def __call__(self, u: Sequence[Any]) -> list[sympy.Symbol]:
        if self.inputs:
            raise ValueError("the model calls nn(...) more than once; call it once and reuse "
                             "its outputs, so that the network is evaluated once per step")
        self.inputs.append([sympy.sympify(x) for x in u])
        return list(self.outputs)


@dataclass
class TracedModel:
    """A model as sympy expressions, with the symbols that stand for its inputs."""

    exprs: list[sympy.Expr]
    states: list[sympy.Symbol]
    params: list[sympy.Symbol]
    param_names: list[str] | None   # None when p is positional (p[0], p[1], ...)
    t: sympy.Symbol
    nn: SymbolicNN | None = None

    @property
    def nn_outputs(self) -> list[sympy.Symbol]:
        return [] if self.nn is None else self.nn.outputs

    @property
    def symbols(self) -> list[sympy.Symbol]:
        """Every input symbol, in the order states, parameters, t, network outputs."""
        return [*self.states, *self.params, self.t, *self.nn_outputs]


def _param_symbols(p: Any):
    if p is None:
        return None, [], None
    if isinstance(p, (Params, Mapping)):
        names = list(p.names() if isinstance(p, Params) else p.keys())
        syms = [sympy.Symbol(name, real=True) for name in names]
        return Params(dict(zip(names, syms))), syms, names
    if isinstance(p, torch.Tensor):
        k = 1 if p.ndim == 0 else int(p.shape[-1])
    elif isinstance(p, int):
        k = p
    else:
        k = len(p)
    syms = list(sympy.symbols(f"p1:{k + 1}", real=True))
    return syms, syms, None


def _takes_nn(f: Callable) -> bool:
    try:
        params = inspect.signature(f).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = [q for q in params if q.kind in (q.POSITIONAL_ONLY, q.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 4


def trace(f: Callable, n_states: int, p: Any = None, *, nn_outputs: int | None = None,
          state_names: Sequence[str] | None = None) -> TracedModel:
    """Run `f(u, p, t)` (or `f(u, p, t, nn)`) on sympy symbols.

    Arguments:
        f: the model, written with `pyude.ops` for its functions.
        n_states: the number of state components.
        p: the parameters as given to `ODEProblem` (a dict gives named symbols, a sequence
            or tensor gives p1..pk), or the number of positional parameters.
        nn_outputs: for a UDE `f(u, p, t, nn)`, the number of network outputs; `nn(u)`
            then returns the symbols nn1..nnm.
        state_names: names for the state symbols (default u1..un).

    Returns:
        a `TracedModel` whose `exprs` are the derivatives as sympy expressions.
    """
    names = list(state_names) if state_names is not None else [f"u{i + 1}"
                                                                for i in range(n_states)]
    if len(names) != n_states:
        raise ValueError(f"state_names has {len(names)} names for {n_states} states")
    states = [sympy.Symbol(name, real=True) for name in names]
    p_arg, p_syms, p_names = _param_symbols(p)
    t = sympy.Symbol("t", real=True)
    nn = None
    args: list[Any] = [list(states), p_arg, t]
    if nn_outputs is not None:
        nn = SymbolicNN(int(nn_outputs))
        args.append(nn)
    elif _takes_nn(f):
        raise ValueError("f takes a fourth argument `nn` (a UDE); pass nn_outputs=<number of "
                         "network outputs> to trace it")
    try:
        out = f(*args)
    except TypeError as err:
        if "Tensor" in str(err) or "torch" in str(err):
            raise TypeError(
                f"tracing f failed: {err}. Under tracing the state and parameters are sympy "
                f"symbols, which torch functions cannot take; write the model with "
                f"`pyude.ops` (ops.exp, ops.tanh, ...) instead of torch.* functions"
            ) from err
        raise
    if isinstance(out, torch.Tensor) or not isinstance(out, (list, tuple)):
        raise TypeError(
            f"under tracing f must return a list of {n_states} components; it returned "
            f"{type(out).__name__}. Return `[dx, dy, ...]` rather than a stacked tensor")
    if len(out) != n_states:
        raise ValueError(f"f returned {len(out)} components for {n_states} states")
    exprs = [sympy.sympify(e) for e in out]
    return TracedModel(exprs, states, p_syms, p_names, t, nn)
