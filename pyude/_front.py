"""`pyude.solve`: one function for a problem or an ensemble of problems."""

from __future__ import annotations

import functools

from ._solve import solve as solve_problem
from .ensemble import EnsembleProblem, solve_ensemble


@functools.wraps(solve_problem)
def solve(problem, solver=None, *args, **kwargs):
    if isinstance(problem, EnsembleProblem):
        return solve_ensemble(problem, solver, *args, **kwargs)
    return solve_problem(problem, solver, *args, **kwargs)


solve.__doc__ = (solve_problem.__doc__ or "") + """
    An `EnsembleProblem` is solved by `pyude.solve_ensemble` (same arguments: a strategy,
    `trajectories=`, `batch_size=` and the options above).
"""
