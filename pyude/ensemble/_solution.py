"""`EnsembleSolution` and `EnsembleSummary`: the outputs in trajectory order, their return
codes, and statistics over trajectories at the saved times."""

from __future__ import annotations

from collections import Counter
from typing import Any, Sequence

import numpy as np
from torch import Tensor

from .._errors import SolverError
from .._retcode import ReturnCode
from .._solution import Solution


class EnsembleSummary:
    """Statistics over the trajectories at each saved time (SciML's `EnsembleSummary`).

    Attributes:
        t: the saved times, shape `(T,)`; None when the outputs are not time series.
        mean, var, median, qlow, qhigh: numpy arrays shaped like one trajectory's states,
            `(T, n)` (or like one output). `var` is the sample variance (ddof 1).
        quantiles: the levels of `qlow` and `qhigh`.
        n: how many trajectories went into the statistics.
        excluded: the failed trajectories left out (their states stop early).
    """

    def __init__(self, t, mean, var, median, qlow, qhigh, quantiles, n, excluded):
        self.t, self.mean, self.var, self.median = t, mean, var, median
        self.qlow, self.qhigh, self.quantiles = qlow, qhigh, quantiles
        self.n, self.excluded = n, excluded

    def plot(self, ax=None, components: Sequence[int] | None = None,
             labels: Sequence[str] | None = None, alpha: float = 0.25):
        """The median of each component over time with its quantile band (matplotlib,
        imported here). Returns the axes."""
        from ._plot import plot_summary
        return plot_summary(self, ax, components, labels, alpha)

    def __repr__(self) -> str:
        shape = tuple(self.mean.shape)
        return (f"EnsembleSummary(n={self.n}, excluded={len(self.excluded)}, "
                f"shape={shape}, quantiles={self.quantiles})")


class EnsembleSolution:
    """The result of `solve_ensemble`.

    Attributes:
        u: the outputs in trajectory order (a `Solution` each, or what `output_func`
            returned); with a `reduction`, its final value.
        retcodes: the `ReturnCode` of each trajectory solved, in trajectory order.
        converged: True when the reduction stopped the ensemble early.
        trajectories: how many trajectories were solved and folded in.
        elapsed: wall-clock seconds.
        stats: counters: `chunks`, `batch_size`, `reruns`, `workers` (per process that
            solved chunks, `host:pid`: its chunks, wall seconds, and CPU seconds of the
            thread that ran them), and for a distributed strategy `resubmitted` chunks and
            `executors_replaced`.

    `sol[i]` and iteration reach the outputs; `sol.summary()` the statistics over
    trajectories; `sol.plot()` draws their quantile bands.
    """

    def __init__(self, u: Any, retcodes: list[ReturnCode], converged: bool,
                 trajectories: int, elapsed: float, strategy, stats: dict,
                 reduced: bool):
        self.u = u
        self.retcodes = retcodes
        self.converged = converged
        self.trajectories = trajectories
        self.elapsed = elapsed
        self.strategy = strategy
        self.stats = stats
        self._reduced = reduced

    @property
    def success(self) -> bool:
        """Every trajectory succeeded."""
        return all(rc.successful for rc in self.retcodes)

    @property
    def failed(self) -> list[int]:
        """The indices of the trajectories that did not succeed."""
        return [i for i, rc in enumerate(self.retcodes) if not rc.successful]

    def raise_for_status(self) -> "EnsembleSolution":
        """Raise `SolverError` naming the failed trajectories, unless all succeeded."""
        failed = self.failed
        if failed:
            counts = Counter(self.retcodes[i].name for i in failed)
            shown = ", ".join(map(str, failed[:10])) + (", ..." if len(failed) > 10 else "")
            raise SolverError(
                f"{len(failed)} of {len(self.retcodes)} trajectories failed "
                f"({', '.join(f'{k}: {v}' for k, v in counts.items())}); trajectories "
                f"{shown}. Each one's message is in `sol[i].message`.")
        return self

    def _outputs(self) -> list:
        if self._reduced:
            raise TypeError("this ensemble was folded by its `reduction`: `sol.u` is the "
                            "reduced value, and the outputs of single trajectories were not "
                            "kept")
        return self.u

    def __len__(self) -> int:
        return len(self._outputs())

    def __getitem__(self, i):
        return self._outputs()[i]

    def __iter__(self):
        return iter(self._outputs())

    def summary(self, quantiles: tuple[float, float] = (0.05, 0.95)) -> EnsembleSummary:
        """Mean, variance, median and the `quantiles` over the successful trajectories, at
        each saved time (or over the outputs of `output_func`, when they are tensors,
        arrays or numbers of one shape)."""
        lo, hi = (float(q) for q in quantiles)
        if not 0.0 <= lo < hi <= 1.0:
            raise ValueError(f"quantiles must be two levels 0 <= low < high <= 1; "
                             f"got {quantiles!r}")
        outputs = self._outputs()
        keep = [i for i, rc in enumerate(self.retcodes) if rc.successful]
        excluded = tuple(i for i, rc in enumerate(self.retcodes) if not rc.successful)
        if not keep:
            raise ValueError("no trajectory succeeded, so there is nothing to summarise; "
                             "see `sol.retcodes` and `sol[i].message`")
        t, data = _stack_outputs([outputs[i] for i in keep])
        ddof = 1 if len(keep) > 1 else 0
        qlow, median, qhigh = np.quantile(data, [lo, 0.5, hi], axis=0)
        return EnsembleSummary(t, data.mean(axis=0), data.var(axis=0, ddof=ddof), median,
                               qlow, qhigh, (lo, hi), len(keep), excluded)

    def plot(self, ax=None, components: Sequence[int] | None = None,
             labels: Sequence[str] | None = None,
             quantiles: tuple[float, float] = (0.05, 0.95), alpha: float = 0.25):
        """The median and quantile band of each component over time (matplotlib)."""
        return self.summary(quantiles).plot(ax, components, labels, alpha)

    def __repr__(self) -> str:
        counts = Counter(rc.name for rc in self.retcodes)
        return (f"EnsembleSolution(trajectories={self.trajectories}, "
                f"retcodes={dict(counts)}, converged={self.converged}, "
                f"elapsed={self.elapsed:.3g} s, strategy={self.strategy!r})")


def _stack_outputs(outputs: list) -> tuple[np.ndarray | None, np.ndarray]:
    if all(isinstance(o, Solution) for o in outputs):
        t0 = outputs[0].t.detach().cpu().numpy()
        for o in outputs:
            t = o.t.detach().cpu().numpy()
            if t.shape != t0.shape or not np.array_equal(t, t0):
                raise ValueError(
                    "the trajectories were saved at different times (each adaptive solve "
                    "saves its own steps); pass `saveat=` to the ensemble solve so that all "
                    "share the times of the summary")
        data = np.stack([o.u.detach().cpu().numpy() for o in outputs]).astype(np.float64)
        return t0, data
    try:
        arrays = [o.detach().cpu().numpy() if isinstance(o, Tensor) else np.asarray(o)
                  for o in outputs]
        data = np.stack(arrays).astype(np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"summary() needs Solutions, or outputs that are tensors, arrays or numbers of "
            f"one shape; the outputs here are {type(outputs[0]).__name__} ({err})") from None
    return None, data
