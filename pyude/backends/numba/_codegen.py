"""Print a traced model as Python source for numba: the right-hand side, its analytic
Jacobian (`sympy.diff`) and df/dt, each with its common subexpressions shared (`sympy.cse`).

Functions print from the one op table (`pyude.symbolic._ops.OPS`), from its `python`
column: a function of `math` or a builtin prints as its name, any other (pyude's own
`sigmoid`, `softplus`) has its source copied into the generated module and compiled there,
so the generated code and the torch evaluation read the same definitions.

Parameters are read from the run-time array `p` (never baked in as numbers), so a new `p`
or `u0` reuses the compiled code.
"""

from __future__ import annotations

import builtins
import inspect
import textwrap
from dataclasses import dataclass

import sympy

from ..._errors import UnsupportedOperationError
from ...symbolic._printer import ExprPrinter
from ...symbolic._trace import TracedModel


def op_name(op) -> tuple[str, str | None]:
    """How generated code calls `op`, and the source it needs in the module (or None)."""
    fn = op.python
    if getattr(fn, "__module__", None) == "math":
        return f"math.{fn.__name__}", None
    if getattr(builtins, getattr(fn, "__name__", ""), None) is fn:
        return fn.__name__, None
    source = textwrap.dedent(inspect.getsource(fn))
    return fn.__name__, "@njit(cache=True)\n" + source


class PythonPrinter(ExprPrinter):
    """sympy -> Python scalar code that numba compiles; every number prints as a float.
    Table functions that are not `math`'s or builtins are collected in `helpers`, their
    source to copy into the generated module."""

    language = "Python"
    pi = "math.pi"
    e = "math.e"

    def __init__(self, names: dict[sympy.Symbol, str]):
        super().__init__(names)
        self.helpers: dict[str, str] = {}

    def _call(self, op, args: list[str]) -> str:
        name, helper = op_name(op)
        if helper is not None:
            self.helpers[name] = helper
        return f"{name}({', '.join(args)})"

    def _pow(self, base, expo) -> str:
        if expo == sympy.Rational(1, 2):
            return f"math.sqrt({self(base)})"
        if expo == -1:
            return f"(1.0 / {self(base)})"
        if expo.is_Integer:
            return f"({self(base)} ** {int(expo)})"
        return f"({self(base)} ** {self(expo)})"


def _inputs(model: TracedModel) -> dict[sympy.Symbol, str]:
    names = {s: f"u[{i}]" for i, s in enumerate(model.states)}
    names.update({s: f"p[{k}]" for k, s in enumerate(model.params)})
    names[model.t] = "t"
    return names


def assign(printer: PythonPrinter, exprs: list, targets: list[str], prefix: str,
            op: str = "=", skip_zero: bool = False) -> list[str]:
    """`target op expr` lines with shared subexpressions computed once (named prefix<k>)."""
    if skip_zero:
        pairs = [(t, e) for t, e in zip(targets, exprs) if e != 0]
        targets, exprs = [t for t, _ in pairs], [e for _, e in pairs]
    if not exprs:
        return []
    temps, reduced = sympy.cse(exprs, symbols=sympy.numbered_symbols(f"_{prefix}"),
                               optimizations=None)
    lines = []
    for k, (sym, value) in enumerate(temps):
        name = f"{prefix}{k}"
        lines.append(f"    {name} = {printer(value)}")
        printer.names[sym] = name
    for target, value in zip(targets, reduced):
        lines.append(f"    {target} {op} {printer(value)}")
    return lines


@dataclass(frozen=True)
class GeneratedModel:
    """The module source, and why the Jacobian could not be printed (None when it was)."""

    source: str
    jac_error: str | None
    n_states: int
    n_params: int
    reads_t: bool


def generate(model: TracedModel) -> GeneratedModel:
    """The module source defining `rhs`, `jac` and `dfdt` with the fixed signatures of
    `_types`."""
    if model.nn is not None:
        raise UnsupportedOperationError("the model calls a network; the numba backend "
                                        "compiles models without networks for now")
    n = len(model.states)
    printer = PythonPrinter(_inputs(model))
    rhs = assign(printer, list(model.exprs), [f"out[{i}]" for i in range(n)], "w")
    jac_printer = PythonPrinter(_inputs(model))
    reads_t = any(f.has(model.t) for f in model.exprs)
    try:
        jac_exprs = [sympy.diff(f, s) for f in model.exprs for s in model.states]
        targets = [f"J[{i}, {j}]" for i in range(n) for j in range(n)]
        jac = assign(jac_printer, jac_exprs, targets, "w")
        dfdt = ["    out[:] = 0.0"]
        if reads_t:
            dfdt = assign(jac_printer, [sympy.diff(f, model.t) for f in model.exprs],
                          [f"out[{i}]" for i in range(n)], "w")
        jac_error = None
    except UnsupportedOperationError as err:
        # (|x|, min and max differentiate to functions outside the table): only the stiff
        # methods need these two, and they are refused with this reason
        jac_error = str(err)
        jac, dfdt = ["    J[:, :] = math.nan"], ["    out[:] = math.nan"]
    helpers = {**printer.helpers, **jac_printer.helpers}
    source = "\n".join([
        '"""Generated by pyude from a traced model; edits are overwritten."""',
        "import math",
        "from numba import njit",
        "from pyude.backends.numba._types import DFDT_SIG, JAC_SIG, RHS_SIG",
        "", "",
        *[helpers[k] + "\n" for k in sorted(helpers)],
        "@njit(RHS_SIG, cache=True)", "def rhs(t, u, p, out):", *rhs, "", "",
        "@njit(JAC_SIG, cache=True)", "def jac(t, u, p, J):", *jac, "", "",
        "@njit(DFDT_SIG, cache=True)", "def dfdt(t, u, p, out):", *dfdt, "",
    ])
    return GeneratedModel(source, jac_error, n, len(model.params), reads_t)

