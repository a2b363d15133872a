"""Quantile bands of an ensemble over time (matplotlib, imported on first use)."""

from __future__ import annotations


def plot_summary(summary, ax, components, labels, alpha):
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("plotting an ensemble needs matplotlib: "
                          "`pip install pyude[plot]`") from None
    if summary.t is None:
        raise ValueError("these outputs are not time series (output_func returned values, "
                         "not solutions), so there are no bands over time to draw; read "
                         "the statistics from sol.summary() instead")
    if summary.median.ndim != 2:
        raise ValueError(f"plot() draws trajectories of shape (T, n); these have shape "
                         f"{tuple(summary.median.shape)} (u0 with a batch axis); draw from "
                         f"sol.summary() instead")
    n = summary.median.shape[1]
    components = list(range(n)) if components is None else list(components)
    if labels is not None and len(labels) != len(components):
        raise ValueError(f"labels has {len(labels)} names for {len(components)} components")
    if ax is None:
        _, ax = plt.subplots()
    lo, hi = summary.quantiles
    for k, c in enumerate(components):
        name = labels[k] if labels is not None else f"u[{c}]"
        line, = ax.plot(summary.t, summary.median[:, c], label=f"{name} median")
        ax.fill_between(summary.t, summary.qlow[:, c], summary.qhigh[:, c],
                        color=line.get_color(), alpha=alpha,
                        label=f"{name} {lo:.0%}-{hi:.0%}")
    ax.set_xlabel("t")
    ax.set_title(f"ensemble of {summary.n} trajectories")
    ax.legend()
    return ax
