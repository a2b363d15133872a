"""Math functions for model right-hand sides: one call works on tensors, floats and symbols.

Write a model with these instead of `torch.exp` and friends, so that the same function can
be evaluated by torch, traced into sympy, and printed as Julia:

    from pyude import ops

    def f(u, p, t):
        x, y = u
        return [p.a * x - ops.exp(y), ops.tanh(x * y)]

The list of functions is the op table in `pyude/symbolic/_ops.py`.
"""

from __future__ import annotations

import sympy
import torch

from .symbolic._ops import BY_NAME, Op

__all__ = [
    "exp", "log", "sin", "cos", "tan", "tanh", "sqrt", "abs",
    "sigmoid", "softplus", "min", "max",
]


def _apply(op: Op, *args):
    if any(isinstance(a, sympy.Basic) for a in args):
        return op.sympy(*args)
    if any(isinstance(a, torch.Tensor) for a in args):
        ref = next(a for a in args if isinstance(a, torch.Tensor))
        tensors = [a if isinstance(a, torch.Tensor) else torch.as_tensor(a, dtype=ref.dtype,
                                                                         device=ref.device)
                   for a in args]
        return op.torch(*tensors)
    return op.python(*args)


def _unary(name: str):
    op = BY_NAME[name]

    def fn(x):
        return _apply(op, x)

    fn.__name__ = name
    fn.__doc__ = f"`{name}(x)` on a tensor, a float or a sympy expression."
    return fn


def _binary(name: str):
    op = BY_NAME[name]

    def fn(x, y):
        return _apply(op, x, y)

    fn.__name__ = name
    fn.__doc__ = f"Element-wise `{name}(x, y)` on tensors, floats or sympy expressions."
    return fn


exp = _unary("exp")
log = _unary("log")
sin = _unary("sin")
cos = _unary("cos")
tan = _unary("tan")
tanh = _unary("tanh")
sqrt = _unary("sqrt")
abs = _unary("abs")  # noqa: A001 - the op table's name
sigmoid = _unary("sigmoid")
softplus = _unary("softplus")
min = _binary("min")  # noqa: A001
max = _binary("max")  # noqa: A001
