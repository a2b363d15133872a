"""Evaluate sympy expressions with torch, reading functions from the shared op table."""

from __future__ import annotations

from typing import Callable, Sequence

import sympy
import torch
from torch import Tensor

from .._errors import UnsupportedOperationError
from ._ops import BY_SYMPY_CLASS, EXTEND_HINT


def _eval(e: sympy.Expr, env: dict, memo: dict):
    if e in memo:
        return memo[e]
    if isinstance(e, sympy.Symbol):
        if e not in env:
            raise ValueError(f"no value for symbol {e}")
        out = env[e]
    elif e.is_Number or e in (sympy.pi, sympy.E):
        out = float(e)
    elif isinstance(e, sympy.Add):
        out = _fold(e.args, env, memo, lambda a, b: a + b)
    elif isinstance(e, sympy.Mul):
        out = _fold(e.args, env, memo, lambda a, b: a * b)
    elif isinstance(e, sympy.Pow):
        base, expo = (_eval(a, env, memo) for a in e.args)
        out = base ** expo
    else:
        op = BY_SYMPY_CLASS.get(type(e))
        if op is None:
            raise UnsupportedOperationError(
                f"the expression uses `{type(e).__name__}` ({e}), which has no torch form "
                f"in the op table. {EXTEND_HINT}")
        args = [_eval(a, env, memo) for a in e.args]
        ref = next((a for a in args if isinstance(a, Tensor)), None)
        if ref is None:
            out = op.python(*args)
        else:
            out = op.torch(*[a if isinstance(a, Tensor) else torch.as_tensor(
                a, dtype=ref.dtype, device=ref.device) for a in args])
    memo[e] = out
    return out


def _fold(args, env, memo, combine):
    values = [_eval(a, env, memo) for a in args]
    out = values[0]
    for v in values[1:]:
        out = combine(out, v)
    return out


def to_torch(exprs: Sequence[sympy.Expr], symbols: Sequence[sympy.Symbol]) -> Callable:
    """A function of tensors (one per symbol, in order) returning one tensor per expression.
    Shared subexpressions are evaluated once per call."""
    exprs, symbols = list(exprs), list(symbols)

    def evaluate(*values):
        if len(values) != len(symbols):
            raise TypeError(f"expected {len(symbols)} values for {symbols}; got {len(values)}")
        env, memo = dict(zip(symbols, values)), {}
        return [_eval(e, env, memo) for e in exprs]

    return evaluate
