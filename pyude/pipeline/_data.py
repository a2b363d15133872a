"""Observations: simulated from a problem's true model with noise, or read from a file."""

from __future__ import annotations

from pathlib import Path

import torch

from .._problem import ODEProblem
from ..discovery import check_names
from .._solve import solve
from ..solvers import Vern7
from ._problems import DiscoveryProblem


def make_data(problem: DiscoveryProblem, noise: float, seed: int):
    """Observations every dt_save on [0, t_end] with Gaussian noise of `noise` times each
    state's mean absolute value."""
    if problem.truth is None:
        raise ValueError(f"the problem {problem.name!r} has no true model to simulate data "
                         f"from; give the observations (t and data)")
    t = torch.arange(0.0, problem.t_end + 1e-9, problem.dt_save, dtype=torch.float64)
    prob = ODEProblem(problem.truth, problem.u0, (0.0, problem.t_end), problem.true_p)
    truth = solve(prob, Vern7(), backend="native", saveat=t, rtol=1e-12, atol=1e-12).u
    gen = torch.Generator().manual_seed(seed)
    scale = noise * truth.abs().mean(dim=0)
    data = truth + scale * torch.randn(truth.shape, generator=gen, dtype=torch.float64)
    return t, truth, data


def noise_estimate(t: torch.Tensor, data: torch.Tensor) -> float:
    """The data's noise variance, pooled over the states: each state's residual from a
    smoothing spline (its penalty chosen by generalised cross-validation on a grid) over the
    residual's degrees of freedom, n - trace of the smoother. 0.65-1.0 times the true
    variance on the built-in problems at 1-5% noise (the plain mean squared residual is
    0.3-0.7 times: the spline follows part of the noise); many times too high when the
    observations sample the dynamics sparsely (the spline cannot follow the signal)."""
    import numpy as np
    from scipy.interpolate import make_smoothing_spline

    x = t.detach().cpu().numpy()
    y = data.detach().cpu().numpy().reshape(len(x), -1)
    n = len(x)
    best, variance = np.full(y.shape[1], np.inf), np.zeros(y.shape[1])
    for lam in np.geomspace(1e-8, 1e2, 21):
        smoother = make_smoothing_spline(x, np.eye(n), lam=lam)(x)
        dof = n - np.trace(smoother)
        rss = ((y - smoother @ y) ** 2).sum(axis=0)
        if dof < n / 4:
            continue            # near interpolation GCV is unreliable (rss and dof both ~0)
        gcv = n * rss / dof**2
        better = gcv < best
        best[better], variance[better] = gcv[better], rss[better] / dof
    return float(variance.mean())


def load_data(path: str | Path, state_names: list[str] | None = None):
    """Observations from a file: a CSV with a header row (a time column named `t` or
    `time`, then one column per state) or an NPZ with arrays `t` and `u` (shape
    (len(t), n)). With `state_names` given, CSV columns are taken by those names.
    Returns (t, data, names)."""
    import numpy as np
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no data file at {path}"
                                + (" (it is a folder)" if path.is_dir() else ""))
    if path.suffix.lower() == ".npz":
        import zipfile
        from pickle import UnpicklingError
        try:
            if not zipfile.is_zipfile(path):
                raise OSError("not a zip archive of arrays; write one with numpy.savez")
            with np.load(path) as arrays:
                missing = [k for k in ("t", "u") if k not in arrays]
                if missing:
                    raise ValueError(f"{path} lacks the array(s) {missing}; an NPZ needs `t` "
                                     f"(times) and `u` (states, shape (len(t), n)); it has "
                                     f"{sorted(arrays)}")
                t, u = arrays["t"], arrays["u"]
        except (OSError, zipfile.BadZipFile, EOFError, UnpicklingError) as err:
            raise ValueError(f"{path} is not a readable NPZ file ({err})") from err
        if not (np.issubdtype(t.dtype, np.number) and np.issubdtype(u.dtype, np.number)):
            raise ValueError(f"{path}: the arrays t and u must hold numbers; they hold "
                             f"{t.dtype} and {u.dtype}")
        u = u.reshape(len(u), -1) if u.ndim == 1 else u
        names = state_names or [f"u{i + 1}" for i in range(u.shape[-1])]
        return t, u, names
    if path.suffix.lower() != ".csv":
        raise ValueError(f"cannot read {path.name}: give a .csv (header row: t, states...) "
                         f"or an .npz (arrays t and u)")
    columns, rows = _read_csv(path)
    time = next((c for c in columns if c.strip().lower() in ("t", "time")), None)
    if time is None:
        raise ValueError(f"{path} has no time column: its header must name one `t` or "
                         f"`time`; it has {columns}")
    others = [c for c in columns if c != time]
    if state_names is not None:
        missing = [n for n in state_names if n not in others]
        if missing:
            raise ValueError(f"{path} has no column for the state(s) {missing}; its columns "
                             f"are {columns}")
        others = list(state_names)
    else:
        check_names(others, f"{path.name}: the column")
    table = {c: np.array([row[columns.index(c)] for row in rows]) for c in columns}
    t = table[time]
    u = np.stack([table[c] for c in others], axis=-1)
    return t, u, others


def _read_csv(path: Path) -> tuple[list[str], list[list[float]]]:
    """The header's names and the rows as numbers; a cell that is not a number is named by
    its row and column (a cell reading nan is a number, refused later as missing data)."""
    import csv
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            lines = [(k + 1, row) for k, row in enumerate(csv.reader(handle))
                     if any(cell.strip() for cell in row)]
    except UnicodeDecodeError as err:
        raise ValueError(f"{path} is not a text CSV file (UTF-8): {err.reason}") from err
    if not lines:
        raise ValueError(f"{path} is empty: a CSV needs a header row (t, then one name per "
                         f"state) and a row of numbers per observation")
    columns = [cell.strip() for cell in lines[0][1]]
    if len(set(columns)) != len(columns) or not all(columns):
        raise ValueError(f"{path}: the header's column names must be distinct and not "
                         f"empty; got {columns}")
    if len(lines) == 1:
        raise ValueError(f"{path} has a header ({', '.join(columns)}) but no observations")
    rows = []
    for line, row in lines[1:]:
        if len(row) != len(columns):
            raise ValueError(f"{path}, line {line}: {len(row)} cells for the header's "
                             f"{len(columns)} columns")
        values = []
        for name, cell in zip(columns, row):
            try:
                values.append(float(cell))
            except ValueError:
                raise ValueError(f"{path}, line {line}, column {name!r}: {cell.strip()!r} "
                                 f"is not a number") from None
        rows.append(values)
    return columns, rows
