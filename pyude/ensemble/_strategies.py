"""Where the chunks of an ensemble run: in this thread, over threads, or on an executor.

A strategy only schedules: every one of them runs `run_chunk` on the same chunks, so the
numbers are the same bits whichever runs them (for the same `batch_size` and backend).
"""

from __future__ import annotations

import abc
import concurrent.futures as cf
import math
import pickle
import uuid
from typing import Callable

from ._chunk import ChunkResult, Work, run_chunk
from ._pickling import pickle_work, remote_chunk

# The names of the exceptions by which executors say a worker was lost (not that the work
# itself failed): the standard library's broken pools, Dask's KilledWorker (after the
# scheduler's own retries) and lost connections, Ray's dead workers and nodes.
LOST_WORKER_ERRORS = frozenset({
    "BrokenExecutor", "BrokenProcessPool", "KilledWorker", "CommClosedError",
    "WorkerCrashedError", "NodeDiedError", "ActorDiedError", "OwnerDiedError",
    "WorkerLostError",
})


class EnsembleError(RuntimeError):
    """An ensemble lost work it could not recover: a chunk whose worker died more often
    than the strategy retries, or an executor that broke and cannot be replaced."""


class AbstractEnsembleStrategy(abc.ABC):
    """How the chunks of an ensemble are run. `run` calls `fold` with each chunk's result
    (in any order) and stops early when `fold` returns True."""

    @abc.abstractmethod
    def default_batch_size(self, trajectories: int) -> int:
        ...

    @abc.abstractmethod
    def run(self, work: Work, chunks: list[tuple[int, int]],
            fold: Callable[[ChunkResult], bool]) -> dict:
        """Run the chunks; return counters for the solution's `stats`."""


class EnsembleSerial(AbstractEnsembleStrategy):
    """Chunk after chunk in the calling thread. Each chunk of trajectories that share a
    model is one batched solve."""

    def default_batch_size(self, trajectories: int) -> int:
        return trajectories

    def run(self, work, chunks, fold):
        for start, stop in chunks:
            if fold(run_chunk(work, start, stop)):
                break
        return {}

    def __repr__(self) -> str:
        return "EnsembleSerial()"


class EnsembleThreads(AbstractEnsembleStrategy):
    """Threads of this process. Trajectories that share a model and differ only in the
    values of `u0` and `p` are stacked into one batched solve (vectorised by torch, which
    uses its own threads); with one chunk (the default) the others are solved one per
    thread, with several chunks the chunks run one per thread; `workers` threads (default:
    from the number of CPUs). Gives the same numbers as `EnsembleSerial()`.

    Python threads run Python code one at a time: a model solved trajectory by trajectory
    speeds up only where the solver releases the GIL for long (compiled code). With
    `backend="julia"` or `"auto"` everything runs in the calling thread: Julia is called
    from the main thread only."""

    def __init__(self, workers: int | None = None):
        if workers is not None and (not isinstance(workers, int) or isinstance(workers, bool)
                                    or workers <= 0):
            raise ValueError(f"workers must be a positive number of threads or None (one per "
                             f"CPU); got {workers!r}")
        self.workers = workers

    def default_batch_size(self, trajectories: int) -> int:
        return trajectories

    def run(self, work, chunks, fold):
        if work.options.get("backend", "native") != "native":
            # juliacall is safe from the main thread only (PythonCall #578: Julia's GC run
            # from another Python thread can hang)
            return EnsembleSerial().run(work, chunks, fold)
        with cf.ThreadPoolExecutor(self.workers, thread_name_prefix="pyude-ensemble") as pool:
            if len(chunks) == 1:           # one chunk: its unstackable trajectories in parallel
                fold(run_chunk(work, *chunks[0], map_fn=pool.map))
                return {}
            futures = [pool.submit(run_chunk, work, start, stop) for start, stop in chunks]
            try:
                for future in cf.as_completed(futures):
                    if fold(future.result()):
                        break
            finally:
                for future in futures:
                    future.cancel()
        return {}

    def __repr__(self) -> str:
        return f"EnsembleThreads(workers={self.workers})"


class EnsembleDistributed(AbstractEnsembleStrategy):
    """Chunks sent to a `concurrent.futures.Executor`: a Dask cluster's
    `Client.get_executor()`, a `ProcessPoolExecutor`, Ray's executor, ...

    Arguments:
        executor: the executor, or a function of no arguments that makes one (such as
            `lambda: ProcessPoolExecutor(4)`); pyude then owns it, shuts it down at the end
            and replaces it when it breaks (a `ProcessPoolExecutor` whose worker process
            died takes no more work).
        retries: how often a chunk whose worker was lost is sent again before the ensemble
            gives up with `EnsembleError`. Dask already moves the work of a lost worker to
            the others (up to its `distributed.scheduler.allowed-failures`, 3); these
            retries come on top.

    The work (model, `prob_func`, `output_func`, solver, options) is pickled once, before
    anything is sent; each worker unpickles it once. Results come back in trajectory order
    whatever order the chunks finish in.
    """

    def __init__(self, executor: cf.Executor | Callable[[], cf.Executor], retries: int = 3):
        if not isinstance(executor, cf.Executor) and hasattr(executor, "get_executor"):
            raise TypeError(f"EnsembleDistributed takes an executor: pass "
                            f"`EnsembleDistributed(client.get_executor())`, not the "
                            f"{type(executor).__name__} itself")
        if not (isinstance(executor, cf.Executor) or callable(executor)):
            raise TypeError(
                f"EnsembleDistributed needs a concurrent.futures.Executor, such as a Dask "
                f"client's `client.get_executor()` or a ProcessPoolExecutor, or a function "
                f"that makes one; got {type(executor).__name__}")
        if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
            raise ValueError(f"retries must be a whole number >= 0; got {retries!r}")
        self.executor = executor
        self.retries = retries

    def default_batch_size(self, trajectories: int) -> int:
        """One chunk per worker (four when the executor does not say how many workers it
        has). A native stiff solve costs about as much Python per step for 1 trajectory
        as for 1,000, so few large chunks are fastest; a smaller `batch_size` balances
        uneven workers and loses less work with a worker."""
        workers = _worker_count(self.executor) or 4
        return max(1, math.ceil(trajectories / workers))

    def run(self, work, chunks, fold):
        payload = pickle_work(work)
        return _Dispatch(self, payload, chunks, fold).run()

    def __repr__(self) -> str:
        return f"EnsembleDistributed({self.executor!r}, retries={self.retries})"


def _worker_count(executor) -> int | None:
    if not isinstance(executor, cf.Executor):
        return None
    client = getattr(executor, "_client", None)      # Dask's ClientExecutor
    if client is not None:
        try:
            return sum(client.nthreads().values()) or None
        except Exception:
            return None
    count = getattr(executor, "_max_workers", None)  # the standard library's pools
    return count if isinstance(count, int) else None


def _lost_worker(err: BaseException) -> bool:
    return any(c.__name__ in LOST_WORKER_ERRORS for c in type(err).__mro__)


class _Dispatch:
    """Submit every chunk, collect as they finish, resubmit the chunks of lost workers."""

    def __init__(self, strategy: EnsembleDistributed, payload: bytes, chunks, fold):
        self.strategy = strategy
        self.payload = payload
        self.chunks = chunks
        self.fold = fold
        self.token = uuid.uuid4().hex
        self.owned = not isinstance(strategy.executor, cf.Executor)
        self.executor = strategy.executor() if self.owned else strategy.executor
        self.generation = 0                      # how often an owned executor was replaced
        self.attempts = [0] * len(chunks)
        self.pending: dict = {}
        self.resubmitted = 0
        self.replaced = 0

    def run(self) -> dict:
        try:
            for c in range(len(self.chunks)):
                self._submit(c)
            stopped = False
            while self.pending and not stopped:
                done, _ = cf.wait(list(self.pending), return_when=cf.FIRST_COMPLETED)
                for future in done:
                    c, generation = self.pending.pop(future)
                    try:
                        result = _result(future)
                    except Exception as err:
                        cancelled = (isinstance(err, cf.CancelledError)
                                     and generation < self.generation)
                        if not (_lost_worker(err) or cancelled):
                            start, stop = self.chunks[c]
                            if hasattr(err, "add_note"):
                                err.add_note(f"(raised by the chunk of trajectories {start} "
                                             f"to {stop - 1})")
                            raise
                        self._lost(c, generation, err)
                        continue
                    if self.fold(result):
                        stopped = True
                        break
            return {"resubmitted": self.resubmitted, "executors_replaced": self.replaced}
        finally:
            for future in self.pending:
                future.cancel()
            if self.owned:
                self.executor.shutdown(wait=False, cancel_futures=True)

    def _submit(self, c: int) -> None:
        start, stop = self.chunks[c]
        try:
            future = self.executor.submit(remote_chunk, self.payload, start, stop,
                                          f"{self.token}-{c}-{self.attempts[c]}")
        except cf.BrokenExecutor as err:
            self._lost(c, self.generation, err)
            return
        self.pending[future] = (c, self.generation)

    def _lost(self, c: int, generation: int, err: BaseException) -> None:
        start, stop = self.chunks[c]
        if isinstance(err, cf.BrokenExecutor):
            if not self.owned:
                raise EnsembleError(
                    f"the executor broke ({type(err).__name__}: a worker process died: "
                    f"killed, out of memory or crashed) while it held the chunk of "
                    f"trajectories {start} to {stop - 1}, and a broken "
                    f"{type(self.executor).__name__} takes no more work. Pass a function that "
                    f"makes the executor, e.g. `EnsembleDistributed(lambda: "
                    f"ProcessPoolExecutor(4))`, so that pyude can replace it and resubmit the "
                    f"lost chunks, or use a Dask cluster, which moves them to other "
                    f"workers.") from err
            if generation == self.generation:    # the first chunk to see this breakage
                self.executor.shutdown(wait=False)
                self.executor = self.strategy.executor()
                self.generation += 1
                self.replaced += 1
        self.attempts[c] += 1
        if self.attempts[c] > self.strategy.retries:
            raise EnsembleError(
                f"the chunk of trajectories {start} to {stop - 1} lost its worker "
                f"{self.attempts[c]} times ({type(err).__name__}: {err}); gave up after "
                f"retries={self.strategy.retries}. A worker that dies on the same chunk every "
                f"time is often out of memory (try a smaller batch_size) or crashed by the "
                f"model on these trajectories (solve them with EnsembleSerial() to see).") \
                from err
        self.resubmitted += 1
        self._submit(c)


def _result(future) -> ChunkResult:
    return pickle.loads(future.result())
