"""The run's record as it goes: `results.json` rewritten after every stage and every
structure refit (so that an interrupted run leaves what it did), and the progress of the
structure search in the terminal."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from ._report import failure_report, report


class Output:
    """The report folder and the results so far."""

    def __init__(self, folder: Path, header: dict, started: float):
        self.folder, self.started = folder, started
        self.results = dict(header, status="running", cpu_timings={})
        self.cpu_mark = time.process_time()
        self.trials: list[dict] = []
        self.stage, self.mark = "", started
        self._write()

    def begin(self, stage: str) -> None:
        self.stage, self.mark = stage, time.perf_counter()
        self.cpu_mark = time.process_time()
        self.results["stage"] = stage
        self._write()

    def done(self, **fields) -> None:
        self.results["timings"][self.stage] = time.perf_counter() - self.mark
        self.results["cpu_timings"][self.stage] = time.process_time() - self.cpu_mark
        self.results.update(fields)
        self._write()

    def trial(self, event: dict) -> None:
        self.trials.append({k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                            for k, v in event.items() if k != "best"})
        self.results["structures_tried"] = self.trials
        self._write()

    def failed(self, message: str, interrupted: bool = False) -> None:
        self.results.update(status="interrupted" if interrupted else "failed",
                            failed=dict(stage=self.stage, message=message),
                            seconds=time.perf_counter() - self.started)
        self._write()
        (self.folder / "report.md").write_text(failure_report(self.results))

    def finish(self, results: dict, **fields) -> dict:
        self.results.update(results, **fields)
        return self.results

    def write_report(self, results: dict, pngs: list[str]) -> dict:
        results.update(status="done", seconds=time.perf_counter() - self.started)
        results.pop("stage", None)
        self._write()
        (self.folder / "report.md").write_text(report(results, pngs))
        return results

    def _write(self) -> None:
        (self.folder / "results.json").write_text(
            json.dumps(self.results, indent=2, default=str))


class SearchProgress:
    """'structure search: 7 refits, best BIC -512.3: c1*x*y | c2*x*y' as the search goes
    (a tqdm bar when tqdm is installed and progress is on)."""

    def __init__(self, enabled: bool, first_sweep: int):
        self.bar = None
        if enabled:
            try:
                from tqdm.auto import tqdm
            except ImportError:
                return
            self.bar = tqdm(total=first_sweep, desc="structure search", unit="refit",
                            leave=False)

    def update(self, event: dict) -> None:
        if self.bar is None:
            return
        if self.bar.n >= self.bar.total:
            self.bar.total += 1
        self.bar.update(1)
        best = event.get("best")
        if best:
            self.bar.set_postfix_str(f"best BIC {best['bic']:.1f}: "
                                     + " | ".join(best["equations"]), refresh=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
