"""`solve_ensemble`: checks every argument before any work, runs the chunks on a strategy,
folds their results in trajectory order."""

from __future__ import annotations

import concurrent.futures as cf
import inspect
import time
from typing import Any

from .._errors import reject_unknown_kwargs
from .._problem import ODEProblem
from ..solvers._base import AbstractSolver
from ._chunk import ChunkResult, Work
from ._problem import EnsembleProblem
from ._solution import EnsembleSolution
from ._strategies import AbstractEnsembleStrategy, EnsembleThreads


def solve_ensemble(ensemble: EnsembleProblem, solver: AbstractSolver | None = None,
                   strategy: AbstractEnsembleStrategy | None = None, *,
                   trajectories: int, batch_size: int | None = None,
                   **options: Any) -> EnsembleSolution:
    """Solve `trajectories` problems made by `ensemble.prob_func` (SciML's ensemble `solve`).

    Arguments:
        ensemble: an `EnsembleProblem`.
        solver: as for `pyude.solve` (default: its automatic choice).
        strategy: `EnsembleThreads()` (the default), `EnsembleSerial()` or
            `EnsembleDistributed(executor)`.
        trajectories: how many problems to solve.
        batch_size: trajectories per chunk. A chunk is the unit of work sent to a worker,
            and the trajectories of a chunk that share a model (`f`, `jac`, time span,
            shape of `u0`) are stacked into one batched solve, sharing its steps. The
            numbers depend on `batch_size` only: every strategy gives the same bits for
            the same `batch_size`. `batch_size=1` solves each trajectory alone, with its own
            steps. The reduction folds one chunk at a time. Default: all trajectories in one
            chunk (serial and threads); one chunk per worker (distributed).
        **options: passed to every `pyude.solve` (`saveat`, `rtol`, `atol`, `backend`,
            ...). A failed trajectory never raises: its return code is in `sol.retcodes`.

    Returns:
        an `EnsembleSolution`, its outputs in trajectory order.
    """
    _check(ensemble, solver, trajectories, batch_size, options)
    strategy = _strategy(strategy)
    if batch_size is None:
        batch_size = strategy.default_batch_size(trajectories)
    batch_size = min(batch_size, trajectories)
    chunks = [(s, min(s + batch_size, trajectories)) for s in range(0, trajectories, batch_size)]
    work = Work(ensemble.problem, ensemble.prob_func, ensemble.output_func, solver, options)
    folder = _Folder(ensemble, chunks)
    began = time.perf_counter()
    extra = strategy.run(work, chunks, folder.fold)
    stats = dict(chunks=len(chunks), batch_size=batch_size, reruns=folder.reruns,
                 workers=folder.workers, **extra)
    return EnsembleSolution(folder.value(), folder.retcodes, folder.converged,
                            len(folder.retcodes), time.perf_counter() - began, strategy,
                            stats, reduced=ensemble.reduction is not None)


class _Folder:
    """Takes chunk results in any order, folds them in trajectory order."""

    def __init__(self, ensemble: EnsembleProblem, chunks: list[tuple[int, int]]):
        self.reduction = ensemble.reduction
        self.u = ([] if ensemble.u_init is None else ensemble.u_init) if self.reduction \
            else []
        self.chunks = chunks
        self.next = 0
        self.waiting: dict[int, ChunkResult] = {}
        self.retcodes: list = []
        self.reruns = 0
        self.workers: dict[str, dict] = {}
        self.converged = False

    def fold(self, result: ChunkResult) -> bool:
        self.waiting[result.start] = result
        while self.next < len(self.chunks) and self.chunks[self.next][0] in self.waiting:
            start, stop = self.chunks[self.next]
            result = self.waiting.pop(start)
            self.next += 1
            self.retcodes.extend(result.retcodes)
            self.reruns += result.reruns
            where = self.workers.setdefault(result.worker,
                                            dict(chunks=0, seconds=0.0, cpu_seconds=0.0))
            where["chunks"] += 1
            where["seconds"] += result.seconds
            where["cpu_seconds"] += result.cpu_seconds
            if self.reduction is None:
                self.u.extend(result.outputs)
                continue
            out = self.reduction(self.u, result.outputs, range(start, stop))
            if not (isinstance(out, tuple) and len(out) == 2):
                raise TypeError(f"reduction must return a pair (u, converged); for "
                                f"trajectories {start} to {stop - 1} it returned "
                                f"{type(out).__name__}")
            self.u, converged = out
            if converged:
                self.converged = True
                return True
        return False

    def value(self):
        return self.u


_ENSEMBLE_KEYWORDS = ("trajectories", "batch_size")


def _solve_keywords() -> tuple[str, ...] | None:
    """`pyude.solve`'s options, or None when its signature does not list them (then
    `solve` itself refuses an unknown one, at the first trajectory)."""
    from .._solve import solve
    params = inspect.signature(solve).parameters.values()
    names = tuple(p.name for p in params if p.kind == p.KEYWORD_ONLY)
    return names or None


def _check(ensemble, solver, trajectories, batch_size, options) -> None:
    if isinstance(ensemble, ODEProblem):
        raise TypeError("solve_ensemble() needs a pyude.EnsembleProblem; wrap the problem: "
                        "`EnsembleProblem(problem, prob_func=...)`, or solve it alone with "
                        "pyude.solve")
    if not isinstance(ensemble, EnsembleProblem):
        raise TypeError(f"solve_ensemble() needs a pyude.EnsembleProblem; got "
                        f"{type(ensemble).__name__}")
    if isinstance(solver, type) and issubclass(solver, AbstractSolver):
        raise TypeError(f"pass a solver instance, `{solver.__name__}()`, not the class")
    if solver is not None and not isinstance(solver, AbstractSolver):
        hint = (" (the strategy is the third argument: solve_ensemble(ensemble, solver, "
                "strategy, ...))" if isinstance(solver, (AbstractEnsembleStrategy, cf.Executor))
                else "")
        raise TypeError(f"solver must be a pyude solver such as pyude.Tsit5(); got "
                        f"{solver!r}{hint}")
    if not _whole(trajectories) or trajectories <= 0:
        raise ValueError(f"trajectories must be a positive whole number (how many problems "
                         f"to solve); got {trajectories!r}")
    if batch_size is not None and (not _whole(batch_size) or batch_size <= 0):
        raise ValueError(f"batch_size must be a positive whole number of trajectories per "
                         f"chunk, or None for the strategy's default; got {batch_size!r}")
    if "throw" in options:
        raise TypeError("solve_ensemble() does not take `throw`: a failed trajectory never "
                        "fails the ensemble, its return code is in `sol.retcodes`; call "
                        "`sol.raise_for_status()` to raise when any failed")
    keywords = _solve_keywords()
    if keywords is not None:
        known = tuple(k for k in keywords if k != "throw")
        unknown = {k: v for k, v in options.items() if k not in known}
        reject_unknown_kwargs("solve_ensemble()", unknown, known + _ENSEMBLE_KEYWORDS)


def _whole(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _strategy(strategy):
    if strategy is None:
        return EnsembleThreads()
    if isinstance(strategy, type) and issubclass(strategy, AbstractEnsembleStrategy):
        raise TypeError(f"pass a strategy instance, `{strategy.__name__}()`, not the class")
    if isinstance(strategy, cf.Executor):
        raise TypeError(f"wrap the executor in a strategy: "
                        f"`EnsembleDistributed({type(strategy).__name__.lower()})`")
    if not isinstance(strategy, AbstractEnsembleStrategy):
        raise TypeError(f"strategy must be EnsembleSerial(), EnsembleThreads() or "
                        f"EnsembleDistributed(executor); got {strategy!r}")
    return strategy
