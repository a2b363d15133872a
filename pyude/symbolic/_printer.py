"""The one walk from a sympy expression to scalar source code: symbols by their given names,
numbers as float literals, sums and products parenthesised, and every function from the op
table. A language supplies its constants, its powers and how it calls a table function."""

from __future__ import annotations

import sympy

from .._errors import UnsupportedOperationError
from ._ops import BY_SYMPY_CLASS, EXTEND_HINT


def float_literal(x) -> str:
    """`x` as a float literal (a negative one in parentheses); infinities and NaN refused."""
    text = repr(float(x))
    if text in ("inf", "-inf", "nan"):
        raise UnsupportedOperationError(f"the model contains the constant {text}")
    return text if float(x) >= 0 else f"({text})"


class ExprPrinter:
    """sympy -> scalar code; subclasses set `language`, `pi`, `e`, `_pow` and `_call`."""

    language: str
    pi: str
    e: str

    def __init__(self, names: dict[sympy.Symbol, str]):
        self.names = names

    def __call__(self, e: sympy.Expr) -> str:
        if isinstance(e, sympy.Symbol):
            if e not in self.names:
                raise ValueError(f"symbol {e} is not an input of the model")
            return self.names[e]
        if e.is_Number:
            return float_literal(e)
        if e is sympy.pi:
            return self.pi
        if e is sympy.E:
            return self.e
        if isinstance(e, sympy.Add):
            return "(" + " + ".join(self(a) for a in e.args) + ")"
        if isinstance(e, sympy.Mul):
            coeff, rest = e.as_coeff_Mul()
            if coeff == -1:
                return f"(-{self(rest)})"
            return "(" + " * ".join(self(a) for a in e.args) + ")"
        if isinstance(e, sympy.Pow):
            return self._pow(*e.args)
        op = BY_SYMPY_CLASS.get(type(e))
        if op is not None:
            return self._call(op, [self(a) for a in e.args])
        raise UnsupportedOperationError(
            f"the model uses `{type(e).__name__}` ({e}), which has no {self.language} form "
            f"in the op table. {EXTEND_HINT}")

    def _pow(self, base: sympy.Expr, expo: sympy.Expr) -> str:
        raise NotImplementedError

    def _call(self, op, args: list[str]) -> str:
        raise NotImplementedError
