"""Names that become symbols: states, parameters, network outputs, data columns.

Every such name is checked once, where it enters, so that the symbols built from it mean
what the user meant in every place they go (sympy expressions, the report, generated Julia
source). Expressions are always built from `sympy.Symbol`s, never by parsing text, so a
name can never run as code; these checks keep the names from colliding with each other and
with what sympy, Julia and pyude's own generated symbols already use.
"""

from __future__ import annotations

import keyword
import re
from typing import Iterable, Sequence

# Names sympy reads as something else (S its singleton registry, I the imaginary unit, E
# Euler's number, N numerical evaluation, O the order symbol, Q the assumptions, C an old
# alias) or its numeric constants: any text round trip of an expression turns them into
# those objects, and a reader of the report could not tell them apart.
SYMPY_RESERVED = {
    "S": "sympy's singleton registry", "I": "the imaginary unit in sympy",
    "E": "Euler's number e in sympy", "N": "sympy's numerical evaluation",
    "O": "sympy's order symbol", "Q": "sympy's assumptions", "C": "a sympy alias",
    "pi": "the constant pi", "oo": "infinity in sympy", "zoo": "complex infinity in sympy",
    "nan": "not-a-number in sympy",
}
# Julia's keywords and the constants a generated model function could shadow
JULIA_RESERVED = {
    "baremodule", "begin", "break", "catch", "const", "continue", "do", "else", "elseif",
    "end", "export", "false", "finally", "for", "function", "global", "if", "import", "let",
    "local", "macro", "module", "quote", "return", "struct", "true", "try", "using", "while",
    "abstract", "mutable", "primitive", "type", "where", "in", "isa", "public", "outer",
    "im", "Inf", "NaN", "nothing", "missing",
}
# pyude's own symbols: t is the time, nn1, nn2, ... the network's outputs under tracing
_PYUDE_RESERVED = re.compile(r"t|nn\d+")


def check_names(names: Iterable, what: str, *, taken: Sequence[str] = (),
                taken_as: str = "") -> list[str]:
    """`names` as a list of strings, each an identifier that collides with nothing; raises
    ValueError naming the first offender and why. `taken`: names already in use elsewhere
    (e.g. the states, when checking parameters), described by `taken_as`."""
    out = []
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"{what} must be strings; got {name!r} ({type(name).__name__})")
        if not name.isidentifier() or keyword.iskeyword(name):
            raise ValueError(f"{what} {name!r} is not a usable name: use letters, digits and "
                             f"underscores, starting with a letter (not a Python keyword)")
        if name in SYMPY_RESERVED:
            raise ValueError(f"{what} {name!r} is {SYMPY_RESERVED[name]}: a symbol of that "
                             f"name would be read as it; rename it (e.g. {_suggest(name)!r})")
        if name in JULIA_RESERVED:
            raise ValueError(f"{what} {name!r} is reserved in Julia; rename it (e.g. "
                             f"{_suggest(name)!r})")
        if _PYUDE_RESERVED.fullmatch(name):
            meaning = "the time" if name == "t" else "a network output's symbol"
            raise ValueError(f"{what} {name!r} is {meaning} in pyude's models; rename it "
                             f"(e.g. {_suggest(name)!r})")
        if name in out:
            raise ValueError(f"{what} name {name!r} appears twice; every name must be "
                             f"distinct")
        if name in taken:
            raise ValueError(f"{what} {name!r} is also {taken_as or 'used elsewhere'}; every "
                             f"name must be distinct")
        out.append(name)
    return out


def _suggest(name: str) -> str:
    return f"{name}_"
