"""Print traced models as Julia source, reading function names from the shared op table."""

from __future__ import annotations

import re

import sympy

from ._ops import BY_SYMPY_CLASS, JULIA_PREAMBLE
from ._printer import ExprPrinter
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


class JuliaPrinter(ExprPrinter):
    """sympy -> Julia scalar code. Every number prints as Float64 so that integer powers
    and divisions behave as in Python."""

    language = "Julia"
    pi = "pi"
    e = "exp(1.0)"

    def _call(self, op, args: list[str]) -> str:
        return f"{op.julia}({', '.join(args)})"

    def _pow(self, base: sympy.Expr, expo: sympy.Expr) -> str:
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
