"""Print traced models as Julia source, reading function names from the shared op table."""

from __future__ import annotations

import re

import sympy

from .._errors import UnsupportedOperationError
from ._ops import BY_SYMPY_CLASS, EXTEND_HINT, JULIA_PREAMBLE
from ._trace import TracedModel

_JULIA_KEYWORDS = {
    "baremodule", "begin", "break", "catch", "const", "continue", "do", "else", "elseif",
    "end", "export", "false", "finally", "for", "function", "global", "if", "import", "let",
    "local", "macro", "module", "quote", "return", "struct", "true", "try", "using", "while",
    "abstract", "mutable", "primitive", "type", "where", "in", "isa", "public", "outer",
    # Base names a model variable must not shadow inside the generated function.
    "u", "p", "t", "nn_out", "pi", "im", "exp", "log", "sin", "cos", "tan", "tanh", "sqrt",
    "abs", "min", "max", "inv", "log1p", "one", "zero",
}


def julia_name(name: str) -> str:
    """A Julia identifier for a model variable, renamed only when it would clash."""
    return f"{name}_" if name in _JULIA_KEYWORDS else name


def _float(x) -> str:
    text = repr(float(x))
    if text in ("inf", "-inf", "nan"):
        raise UnsupportedOperationError(f"the model contains the constant {text}")
    return text


class JuliaPrinter:
    """sympy -> Julia scalar code. Every number prints as Float64 so that integer powers
    and divisions behave as in Python."""

    def __init__(self, names: dict[sympy.Symbol, str]):
        self.names = names

    def __call__(self, e: sympy.Expr) -> str:
        if isinstance(e, sympy.Symbol):
            if e not in self.names:
                raise ValueError(f"symbol {e} is not an input of the model")
            return self.names[e]
        if e.is_Number:
            return _float(e) if e >= 0 else f"({_float(e)})"
        if e is sympy.pi:
            return "pi"
        if e is sympy.E:
            return "exp(1.0)"
        if isinstance(e, sympy.Add):
            return "(" + " + ".join(self(a) for a in e.args) + ")"
        if isinstance(e, sympy.Mul):
            return self._mul(e)
        if isinstance(e, sympy.Pow):
            return self._pow(e)
        op = BY_SYMPY_CLASS.get(type(e))
        if op is not None:
            return f"{op.julia}({', '.join(self(a) for a in e.args)})"
        raise UnsupportedOperationError(
            f"the model uses `{type(e).__name__}` ({e}), which has no Julia form in the op "
            f"table. {EXTEND_HINT}")

    def _mul(self, e: sympy.Mul) -> str:
        coeff, rest = e.as_coeff_Mul()
        if coeff == -1:
            return f"(-{self(rest)})"
        return "(" + " * ".join(self(a) for a in e.args) + ")"

    def _pow(self, e: sympy.Pow) -> str:
        base, expo = e.args
        if expo == sympy.Rational(1, 2):
            return f"sqrt({self(base)})"
        if expo == -1:
            return f"inv({self(base)})"
        # `^` is right-associative in Julia (x^a^b is x^(a^b)), so a power as the base is
        # parenthesised: (x^a)^b.
        text = self(base)
        if isinstance(base, sympy.Pow) and not text.startswith("sqrt(") \
                and not text.startswith("inv("):
            text = f"({text})"
        if expo.is_Integer:
            return f"{text}^{int(expo)}" if expo > 0 else f"{text}^({int(expo)})"
        exponent = self(expo)
        if not isinstance(expo, sympy.Symbol):
            exponent = f"({exponent})"
        return f"{text}^{exponent}"


def _check_names(model: TracedModel) -> dict[sympy.Symbol, str]:
    """The Julia name of every input symbol, or a ValueError when a name is not a plain
    identifier or two inputs share a name (a parameter called `t`, `u1` or `nn1` would be
    the same symbol as the time, a state or a network output)."""
    groups = [("state", model.states), ("parameter", model.params), ("time", [model.t]),
              ("network output", model.nn_outputs)]
    seen: dict[str, str] = {}
    names: dict[sympy.Symbol, str] = {}
    for kind, syms in groups:
        for s in syms:
            name = str(s)
            if not (name.isascii() and name.isidentifier()):
                raise ValueError(
                    f"the {kind} name {name!r} is not a plain identifier (letters, digits and "
                    f"underscores, not starting with a digit), so it cannot be printed as "
                    f"Julia; rename it, e.g. {re.sub(r'[^A-Za-z0-9_]', '_', name) or 'x'!r}")
            printed = "t" if kind == "time" else julia_name(name)
            for key in {name, printed}:
                if key in seen:
                    raise ValueError(
                        f"the name {key!r} belongs to a {seen[key]} and to a {kind}; the "
                        f"model would read one for the other. Rename the parameter (the time "
                        f"is `t`, states are u1..un, network outputs nn1..nnm)")
            seen.update({name: kind, printed: kind})
            names[s] = printed
    return names


def _uses_preamble(exprs) -> bool:
    return any(e.has(op_cls) for e in exprs for op_cls in BY_SYMPY_CLASS
               if BY_SYMPY_CLASS[op_cls].julia.startswith("pyude_"))


def to_julia(model: TracedModel, name: str = "rhs") -> str:
    """Julia source of an out-of-place right-hand side `name(u, p, t)` (or
    `name(u, p, t, nn_out)` for a UDE, with `nn_out` the network's output vector)."""
    names = _check_names(model)
    lines: list[str] = []
    used = set().union(*(e.free_symbols for e in model.exprs)) if model.exprs else set()
    groups = [("u", model.states), ("p", model.params), ("nn_out", model.nn_outputs)]
    for array, syms in groups:
        for i, s in enumerate(syms):
            if s in used:
                lines.append(f"    {names[s]} = {array}[{i + 1}]")
    printer = JuliaPrinter(names)
    body = ",\n        ".join(printer(e) for e in model.exprs)
    if not (name.isascii() and name.isidentifier()):
        raise ValueError(f"the function name {name!r} is not a plain identifier")
    args = "u, p, t, nn_out" if model.nn is not None else "u, p, t"
    src = (f"function {name}({args})\n" + "\n".join(lines) + ("\n" if lines else "")
           + f"    return [\n        {body},\n    ]\nend\n")
    return (JULIA_PREAMBLE + "\n" + src) if _uses_preamble(model.exprs) else src
