"""Observations: simulated from a problem's true model with noise, or read from a file."""

from __future__ import annotations

from pathlib import Path

import torch

from .._problem import ODEProblem
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
    truth = solve(prob, Vern7(), saveat=t, rtol=1e-12, atol=1e-12).u
    gen = torch.Generator().manual_seed(seed)
    scale = noise * truth.abs().mean(dim=0)
    data = truth + scale * torch.randn(truth.shape, generator=gen, dtype=torch.float64)
    return t, truth, data


def load_data(path: str | Path, state_names: list[str] | None = None):
    """Observations from a file: a CSV with a header row (a time column named `t` or
    `time`, then one column per state) or an NPZ with arrays `t` and `u` (shape
    (len(t), n)). With `state_names` given, CSV columns are taken by those names.
    Returns (t, data, names)."""
    import numpy as np
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no data file at {path}")
    if path.suffix.lower() == ".npz":
        with np.load(path) as arrays:
            missing = [k for k in ("t", "u") if k not in arrays]
            if missing:
                raise ValueError(f"{path} lacks the array(s) {missing}; an NPZ needs `t` "
                                 f"(times) and `u` (states, shape (len(t), n)); it has "
                                 f"{sorted(arrays)}")
            t, u = arrays["t"], arrays["u"]
        u = u.reshape(len(u), -1) if u.ndim == 1 else u
        names = state_names or [f"u{i + 1}" for i in range(u.shape[-1])]
        return t, u, names
    if path.suffix.lower() != ".csv":
        raise ValueError(f"cannot read {path.name}: give a .csv (header row: t, states...) "
                         f"or an .npz (arrays t and u)")
    table = np.genfromtxt(path, delimiter=",", names=True, dtype=np.float64,
                          deletechars="", encoding="utf-8")
    columns = list(table.dtype.names or [])
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
    t = table[time].reshape(-1)
    u = np.stack([table[c].reshape(-1) for c in others], axis=-1)
    return t, u, others
