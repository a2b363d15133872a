"""Solve Lotka-Volterra with Tsit5, check it against a high-precision reference, and plot it.

    python examples/lotka_volterra.py [--out lotka_volterra.png]
"""

import argparse

import numpy as np

import pyude
from pyude.problems import lotka_volterra_problem

REFERENCE_T10 = np.array([1.026344767575089319, 0.909691078136041618])  # mpmath, 30 digits


def main(out: str) -> None:
    prob = lotka_volterra_problem()
    sol = pyude.solve(prob, pyude.Tsit5(), rtol=1e-8, atol=1e-8)
    err = np.abs(sol.u[-1].numpy() - REFERENCE_T10).max()
    print(f"{sol.retcode}: {len(sol)} saved steps, {sol.stats.nf} f evaluations, "
          f"error at t=10: {err:.2e}")

    fine = np.linspace(0.0, 10.0, 500)
    dense = sol(fine).numpy()                          # Tsit5's own interpolant
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install pyude[plot]); skipping the plot")
        return
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for i, name in enumerate(["prey x", "predator y"]):
        ax.plot(fine, dense[:, i], label=f"{name} (dense output)")
        ax.plot(sol.t.numpy(), sol.u[:, i].numpy(), ".", ms=3, color=ax.lines[-1].get_color())
    ax.set_xlabel("t")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    print(f"plot written to {out}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="lotka_volterra.png")
    main(parser.parse_args().out)
