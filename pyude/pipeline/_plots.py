"""The report's plots: each state's data with the network's fit and the discovered model in
one colour, the network terms against what the data imply, and the prediction past the
training window."""

from __future__ import annotations

import sympy
import torch

from .._problem import ODEProblem
from .._solve import solve
from ..solvers import Tsit5


def _pyplot():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def _trajectory(model, times: torch.Tensor):
    """The discovered model from its estimated initial state at `times` (None when the
    solve fails)."""
    prob = ODEProblem(model.f, model.u0, (float(times[0]), float(times[-1])), model.p)
    with torch.no_grad():
        sol = solve(prob, Tsit5(), backend="native",
                    saveat=times, rtol=1e-7, atol=1e-7, throw=False,
                    maxiters=50_000)
    return sol.u if sol.success and len(sol) == len(times) else None


def plots(out, spec, t, data, ude, net, model, *, train_end: float, implied=None,
          extrapolation=None) -> list[str]:
    """Write the PNGs into `out` and return their names. `t`, `data`: every observation
    (the fit used those up to `train_end`); `implied`: (states, values) of what each
    network term must equal by the data (smoothed slope minus the known physics), when
    known; `extrapolation`: (times, truth, discovered) past the data, for a simulated
    problem."""
    plt = _pyplot()
    if plt is None:
        return []
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    dense = torch.linspace(float(t[0]), float(t[-1]), 300, dtype=torch.float64)
    with torch.no_grad():
        fitted = ude(data[0], dense)
    found = _trajectory(model, dense)
    held_out = train_end < float(t[-1])

    fig, ax = plt.subplots(figsize=(7.5, 4))
    for i, name in enumerate(spec.state_names):
        c = colours[i % len(colours)]
        ax.plot(t, data[:, i], "o", ms=3, color=c, label=f"{name}: data")
        ax.plot(dense, fitted[:, i], "-", color=c, lw=1, alpha=0.6,
                label=f"{name}: network (UDE) fit")
        if found is not None:
            ax.plot(dense, found[:, i], "--", color=c, lw=1.4, label=f"{name}: discovered model")
    if held_out:
        ax.axvline(train_end, color="grey", lw=0.8, ls=":",
                   label="end of the fitted data (held out after)")
    ax.set_xlabel("t")
    ax.set_ylabel("state")
    ax.set_title("data, the network's fit and the discovered model", fontsize=9)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(out / "fit.png", dpi=110)
    plt.close(fig)
    names = ["fit.png"]

    from ..symbolic import to_torch
    symbols = [sympy.Symbol(n, real=True) for n in spec.state_names]

    def evaluate(expr, states):
        value = to_torch([expr], symbols)(*states.unbind(-1))[0]
        return torch.as_tensor(value).expand(states.shape[0])

    fig, axes = plt.subplots(1, spec.n_network_outputs,
                             figsize=(4.8 * spec.n_network_outputs, 3.6), squeeze=False)
    with torch.no_grad():
        learned = net(fitted)
    terms = model.network_terms(None)
    for j, ax in enumerate(axes[0]):
        if implied is not None:
            ax.plot(t[:len(implied[1])], implied[1][:, j], "o", ms=3, color="grey",
                    label="implied by the data (smoothed slope - known physics)")
        ax.plot(dense, learned[:, j], "-", color=colours[0], label="network, along its fit")
        if found is not None:
            ax.plot(dense, evaluate(terms[j], found), "--", color=colours[1],
                    label="discovered term, along the discovered model")
        if spec.true_terms and extrapolation is not None:
            ax.plot(dense, evaluate(spec.true_terms[j], fitted), ":", color=colours[2],
                    label="true term, along the network's fit")
        ax.set_title(f"network term {j + 1}", fontsize=9)
        ax.set_xlabel("t")
        ax.set_ylabel(f"network output {j + 1}")
        ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(out / "terms.png", dpi=110)
    plt.close(fig)
    names.append("terms.png")
    if extrapolation is None:
        return names

    times, truth, disc = extrapolation
    fig, ax = plt.subplots(figsize=(7.5, 4))
    for i, name in enumerate(spec.state_names):
        c = colours[i % len(colours)]
        ax.plot(times, truth.u[:, i], "-", color=c, lw=1, label=f"{name}: truth")
        if len(disc) == len(times):
            ax.plot(times, disc.u[:, i], "--", color=c, lw=1.4, label=f"{name}: discovered")
    ax.axvline(train_end, color="grey", lw=0.8, ls=":",
               label="end of the training data (extrapolation after)")
    ax.set_xlabel("t")
    ax.set_ylabel("state")
    ax.set_title("the discovered model past the data, against the truth", fontsize=9)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(out / "extrapolation.png", dpi=110)
    plt.close(fig)
    return [*names, "extrapolation.png"]
