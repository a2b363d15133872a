"""One registry of solvers that every property test runs over, and shared test tools.

Adding a solver: add one `Entry` to `SOLVERS`; the tableau, convergence, dense output,
batch, dtype, reverse-time and gradient tests then cover it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

import pyude


@dataclass(frozen=True)
class Entry:
    solver: pyude.solvers.AbstractSolver
    order: int
    # Fixed steps 2^-k for k in this range give errors in the asymptotic regime, well above
    # round-off, on `problem`: "oscillator" (harmonic, on [0, 20]) or "lotka_volterra"
    # (on [0, 10], against the mpmath reference). Linear problems show Rodas methods'
    # higher linear order, so the Rosenbrock family is measured on Lotka-Volterra.
    convergence_k: range
    problem: str = "oscillator"
    # Steps 2^-k for the dense-output order test on the oscillator over [0, 4].
    dense_k: range | None = None
    # Stiff methods: the order observed on Prothero-Robinson with lambda = -1e6 and
    # dt |lambda| >> 1, where most lose order down to their stage order (order reduction).
    stiff_order: int | None = None

    @property
    def id(self) -> str:
        return repr(self.solver)


SOLVERS = [
    Entry(pyude.Euler(), 1, range(7, 12)),
    Entry(pyude.Midpoint(), 2, range(4, 9)),
    Entry(pyude.Heun(), 2, range(4, 9)),
    Entry(pyude.RK4(), 4, range(2, 7)),
    Entry(pyude.BS3(), 3, range(3, 8)),
    Entry(pyude.DP5(), 5, range(1, 5)),
    Entry(pyude.Tsit5(), 5, range(4, 8)),
    Entry(pyude.Vern7(), 7, range(1, 5)),
    Entry(pyude.Rosenbrock23(), 2, range(5, 9), "lotka_volterra", range(3, 7), stiff_order=2),
    Entry(pyude.Rodas4(), 4, range(6, 10), "lotka_volterra", range(3, 7), stiff_order=1),
    Entry(pyude.Rodas5P(), 5, range(5, 9), "lotka_volterra", range(2, 6), stiff_order=3),
    Entry(pyude.TRBDF2(), 2, range(5, 9), "lotka_volterra", range(3, 7), stiff_order=2),
    Entry(pyude.KenCarp4(), 4, range(4, 8), "lotka_volterra", range(3, 7), stiff_order=2),
    Entry(pyude.Kvaerno5(), 5, range(4, 8), "lotka_volterra", range(2, 6), stiff_order=2),
]
ROSENBROCK = [e for e in SOLVERS if isinstance(e.solver, pyude.solvers.AbstractRosenbrock)]
ESDIRK = [e for e in SOLVERS if isinstance(e.solver, pyude.solvers.AbstractESDIRK)]
STIFF = ROSENBROCK + ESDIRK
# Fixed-step runs of implicit methods solve their stages to these tolerances, so that the
# Newton error stays far below the truncation error being measured.
FIXED_STEP_NEWTON = dict(rtol=1e-13, atol=1e-13)
ADAPTIVE = [e for e in SOLVERS if e.solver.adaptive]


def slow_for(items, slow_reprs):
    """The items as pytest params, those whose repr is in `slow_reprs` marked `slow`: the
    default run keeps one of each family where the rest repeats it at many times the cost
    (`-m slow` runs them)."""
    import pytest
    return [pytest.param(x, marks=pytest.mark.slow) if repr(getattr(x, "solver", x))
            in slow_reprs else x for x in items]
EXPLICIT = [e for e in SOLVERS if isinstance(e.solver, pyude.solvers.AbstractERK)]
FIXED = [e for e in SOLVERS if not e.solver.adaptive]


def ids(entries):
    return [e.id for e in entries]


def observed_order(errors: list[float]) -> float:
    """The mean of log2(err[i] / err[i+1]) over halving steps (DiffEqDevTools' estimate)."""
    e = np.asarray(errors)
    return float(np.mean(np.log2(e[:-1] / e[1:])))


# --- Butcher order conditions, from rooted trees ---------------------------------------

def rooted_trees(order: int) -> list[tuple]:
    """All rooted trees with `order` nodes; a tree is the sorted tuple of its subtrees."""
    if order == 1:
        return [()]
    trees = set()
    for parts in _partitions(order - 1):
        choices = [rooted_trees(k) for k in parts]
        for children in itertools.product(*choices):
            trees.add(tuple(sorted(children)))
    return sorted(trees)


def _partitions(n: int, largest: int | None = None):
    largest = n if largest is None else largest
    if n == 0:
        yield ()
        return
    for k in range(min(n, largest), 0, -1):
        for rest in _partitions(n - k, k):
            yield (k, *rest)


def _size(tree) -> int:
    return 1 + sum(_size(c) for c in tree)


def _density(tree) -> int:
    out = _size(tree)
    for c in tree:
        out *= _density(c)
    return out


def _weights(tree, a: np.ndarray) -> np.ndarray:
    out = np.ones(a.shape[0])
    for c in tree:
        out = out * (a @ _weights(c, a))
    return out


def order_condition_residuals(a: np.ndarray, b: np.ndarray, order: int) -> list[float]:
    """b . Phi(t) - 1/gamma(t) for every rooted tree t with at most `order` nodes."""
    out = []
    for n in range(1, order + 1):
        for tree in rooted_trees(n):
            out.append(float(b @ _weights(tree, a)) - float(Fraction(1, _density(tree))))
    return out


def numba_solve(problem, solver=None, **options):
    """`pyude.solve` on the compiled backend (the numba tests' entry)."""
    return pyude.solve(problem, solver, backend="numba", **options)


def run_fresh(code: str, timeout: float = 240) -> str:
    """Run `code` in a new interpreter and return its output; fail (never hang) past
    `timeout`. For forks: a fork copies whatever locks other threads hold at that moment,
    and threads that earlier tests leave behind (a Dask cluster's, say) could hold one."""
    import os
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [root, *filter(None, [os.environ.get("PYTHONPATH")])])}
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=timeout, env=env)
    except subprocess.TimeoutExpired as err:
        raise AssertionError(f"the process did not finish in {timeout} s "
                             f"(output so far: {err.stdout!r} {err.stderr!r})") from None
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def lv_batch(rows=((1.0, 1.0), (0.5, 2.0), (2.0, 0.3))):
    """Lotka-Volterra from a batch of initial states sharing a differentiable alpha:
    (problem, u0, alpha), both requiring grad."""
    import torch

    import pyude
    u0 = torch.tensor(rows, dtype=torch.float64, requires_grad=True)
    a = torch.tensor(1.5, dtype=torch.float64, requires_grad=True)
    prob = pyude.ODEProblem(pyude.problems.lotka_volterra, u0, (0.0, 4.0),
                            {"alpha": a, "beta": 1.0, "gamma": 3.0, "delta": 1.0})
    return prob, u0, a
