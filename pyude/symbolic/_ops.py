"""The one op table shared by torch evaluation, sympy tracing and Julia printing.

Each supported function has one entry: how sympy writes it, how torch evaluates it, and the
Julia name it prints as. `pyude.ops` (what a model calls), `to_torch` and `to_julia` all read
this table, so the native and Julia backends cannot drift apart. To support a new function,
add one `Op` to `OPS` below; every printer and evaluator picks it up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import sympy
import torch


class sigmoid(sympy.Function):
    """The logistic function 1 / (1 + exp(-x)), kept whole so printers name it."""

    @classmethod
    def eval(cls, x):
        if x.is_Number:
            return 1 / (1 + sympy.exp(-x))
        return None

    def _eval_rewrite_as_exp(self, x, **kwargs):
        return 1 / (1 + sympy.exp(-x))

    def fdiff(self, argindex=1):
        s = sigmoid(self.args[0])
        return s * (1 - s)


class softplus(sympy.Function):
    """log(1 + exp(x)), kept whole so printers name it."""

    @classmethod
    def eval(cls, x):
        if x.is_Number:
            return sympy.log(1 + sympy.exp(x))
        return None

    def _eval_rewrite_as_exp(self, x, **kwargs):
        return sympy.log(1 + sympy.exp(x))

    def fdiff(self, argindex=1):
        return sigmoid(self.args[0])


def _py_sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _py_softplus(x: float) -> float:
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


@dataclass(frozen=True)
class Op:
    """One function in every form pyude needs."""

    name: str            # name in pyude.ops
    sympy: type | Callable  # sympy class or constructor
    torch: Callable      # evaluates on tensors
    python: Callable     # evaluates on plain floats
    julia: str           # Julia function name (Base or NNlib-free definitions in the preamble)
    arity: int = 1


OPS: tuple[Op, ...] = (
    Op("exp", sympy.exp, torch.exp, math.exp, "exp"),
    Op("log", sympy.log, torch.log, math.log, "log"),
    Op("sin", sympy.sin, torch.sin, math.sin, "sin"),
    Op("cos", sympy.cos, torch.cos, math.cos, "cos"),
    Op("tan", sympy.tan, torch.tan, math.tan, "tan"),
    Op("tanh", sympy.tanh, torch.tanh, math.tanh, "tanh"),
    Op("sqrt", sympy.sqrt, torch.sqrt, math.sqrt, "sqrt"),
    Op("abs", sympy.Abs, torch.abs, abs, "abs"),
    Op("sigmoid", sigmoid, torch.sigmoid, _py_sigmoid, "pyude_sigmoid"),
    Op("softplus", softplus, torch.nn.functional.softplus, _py_softplus, "pyude_softplus"),
    Op("min", sympy.Min, torch.minimum, min, "min", arity=2),
    Op("max", sympy.Max, torch.maximum, max, "max", arity=2),
)

BY_NAME: dict[str, Op] = {op.name: op for op in OPS}
# sympy's own class for each op (sympy.sqrt builds a Pow, handled by the printers directly).
BY_SYMPY_CLASS: dict[type, Op] = {
    op.sympy: op for op in OPS if isinstance(op.sympy, type)
}

# Julia definitions for ops that are not in Base; printed once at the top of generated code.
JULIA_PREAMBLE = """\
pyude_sigmoid(x) = inv(one(x) + exp(-x))
pyude_softplus(x) = max(x, zero(x)) + log1p(exp(-abs(x)))
"""

EXTEND_HINT = (
    "Add an `Op` entry for it to `OPS` in pyude/symbolic/_ops.py (its sympy, torch, "
    "Python and Julia forms), or rewrite the model with the supported operations: "
    + ", ".join(op.name for op in OPS)
    + ", and the arithmetic operators including `**`."
)
