"""`EnsembleProblem`: one base problem and the functions that vary, judge and fold it."""

from __future__ import annotations

from typing import Any, Callable

from .._problem import ODEProblem


class EnsembleProblem:
    """Many solves of one problem with varying inputs (SciML's `EnsembleProblem`).

    Arguments:
        problem: the base `ODEProblem`.
        prob_func: `prob_func(problem, i, repeat)` returns the problem of trajectory `i`
            (0-based), usually `problem.remake(u0=..., p=...)`. `repeat` counts earlier
            attempts at `i` (0 on the first, 1 after `output_func` asked for a rerun, ...).
            Default: every trajectory solves `problem` itself. To give the same numbers on
            every strategy and worker, draw any randomness from `i` (for example
            `torch.Generator().manual_seed(i)`), not from a global generator.
        output_func: `output_func(sol, i)` returns `(value, rerun)`: what to keep of
            trajectory `i` (the whole `Solution` by default, or a statistic, to send less
            back from the workers), and whether to solve `i` again with
            `prob_func(problem, i, repeat + 1)`.
        reduction: `reduction(u, batch, I)` returns `(u, converged)`: folds the outputs
            `batch` of trajectories `I` (a `range`) into the running value `u`, one batch of
            `batch_size` trajectories at a time in trajectory order; `converged=True` stops
            the ensemble there. Without it the outputs are kept in a list.
        u_init: the starting value of the reduction (default an empty list).

    `prob_func` and `output_func` run where the trajectory is solved (on the workers of a
    distributed strategy); `reduction` runs in the calling process.
    """

    __slots__ = ("problem", "prob_func", "output_func", "reduction", "u_init")

    def __init__(self, problem: ODEProblem, prob_func: Callable | None = None,
                 output_func: Callable | None = None, reduction: Callable | None = None,
                 u_init: Any = None):
        if not isinstance(problem, ODEProblem):
            raise TypeError(f"EnsembleProblem needs a pyude.ODEProblem as its base problem; "
                            f"got {type(problem).__name__}")
        for name, fn in (("prob_func", prob_func), ("output_func", output_func),
                         ("reduction", reduction)):
            if fn is not None and not callable(fn):
                raise TypeError(f"{name} must be a function or None; got {fn!r}")
        if u_init is not None and reduction is None:
            raise ValueError("u_init is the starting value of a reduction; pass `reduction` "
                             "too, or leave u_init out")
        self.problem = problem
        self.prob_func = prob_func
        self.output_func = output_func
        self.reduction = reduction
        self.u_init = u_init

    def __repr__(self) -> str:
        parts = [repr(self.problem)]
        for name in ("prob_func", "output_func", "reduction"):
            fn = getattr(self, name)
            if fn is not None:
                parts.append(f"{name}={getattr(fn, '__name__', type(fn).__name__)}")
        return f"EnsembleProblem({', '.join(parts)})"
