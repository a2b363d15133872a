"""Lotka-Volterra with uncertain parameters: 10,000 trajectories on a local Dask cluster,
and the quantile bands of the prey and predator populations over time.

    python examples/ensemble_uncertainty.py [--trajectories 10000] [--workers 2]
        [--scheduler tcp://host:8786] [--out DIR] [--quick]

`--quick` (the test suite's mode, a few seconds) solves 500 trajectories on a Dask cluster
that runs its worker threads inside this process, so no worker has to import torch; the
full run starts worker processes (each imports torch, seconds on a small machine). The plot
goes to `--out` (default pyude-examples/ensemble_uncertainty/).

Each trajectory draws alpha, beta, gamma and delta within +-10% of SciML's values and
(x0, y0) within +-10% of (1, 1), from a generator seeded by its index, so the numbers are
the same on any machine and any number of workers. With `--scheduler` the same code runs
on a multi-machine Dask cluster (`dask scheduler` on one machine, `dask worker
tcp://host:8786` on each of the others, pyude installed everywhere).
"""

import argparse
import time
from pathlib import Path

import torch

import pyude
from pyude import EnsembleDistributed, EnsembleProblem, EnsembleSerial, solve_ensemble
from pyude.problems import lotka_volterra_problem

NOMINAL = dict(alpha=1.5, beta=1.0, gamma=3.0, delta=1.0)


def uncertain(problem, i, repeat):
    """Trajectory i: every parameter and initial value within +-10% of nominal."""
    g = torch.Generator().manual_seed(i)
    factors = 0.9 + 0.2 * torch.rand(6, generator=g, dtype=torch.float64)
    p = {name: value * factors[k] for k, (name, value) in enumerate(NOMINAL.items())}
    return problem.remake(u0=factors[4:], p=p)


def main(trajectories: int = 10_000, workers: int = 2, scheduler: str | None = None,
         out: str | Path = "pyude-examples/ensemble_uncertainty", quick: bool = False) -> dict:
    from dask.distributed import Client, LocalCluster

    if quick:
        trajectories = min(trajectories, 500)

    ensemble = EnsembleProblem(lotka_volterra_problem(), prob_func=uncertain)
    options = dict(saveat=torch.linspace(0.0, 10.0, 101, dtype=torch.float64),
                   rtol=1e-6, atol=1e-8)
    began = time.perf_counter()
    if scheduler:
        client, cluster = Client(scheduler), None
    else:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1,
                               dashboard_address=None, processes=not quick)
        client = Client(cluster)
    print(f"Dask cluster with {len(client.scheduler_info()['workers'])} workers ready in "
          f"{time.perf_counter() - began:.1f} s")
    with client:
        sol = solve_ensemble(ensemble, pyude.Tsit5(),
                             EnsembleDistributed(client.get_executor()),
                             trajectories=trajectories, **options)
    if cluster is not None:
        cluster.close()
    print(f"{sol.trajectories} trajectories in {sol.elapsed:.2f} s ({sol.stats['chunks']} "
          f"chunks of {sol.stats['batch_size']}), all succeeded: {sol.success}")
    # a chunk shares its steps; each trajectory solved alone agrees to the tolerances
    alone = solve_ensemble(ensemble, pyude.Tsit5(), EnsembleSerial(), trajectories=20,
                           batch_size=1, **options)
    gap = max(float(((a.u - b.u).abs() / (1e-8 + 1e-6 * b.u.abs())).max())
              for a, b in zip(alone, sol))
    print(f"the first 20 solved alone differ by at most {gap:.2f} x (atol + rtol |u|)")

    summary = sol.summary(quantiles=(0.05, 0.95))
    for k, name in enumerate(["prey x", "predator y"]):
        print(f"{name} at t=10: median {summary.median[-1, k]:.3f}, 90% band "
              f"[{summary.qlow[-1, k]:.3f}, {summary.qhigh[-1, k]:.3f}], "
              f"std {summary.var[-1, k] ** 0.5:.3f}")
    result = dict(success=sol.success, trajectories=sol.trajectories, gap=gap,
                  summary=summary)
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install pyude[plot]); skipping the plot")
        return result
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    summary.plot(ax, labels=["prey x", "predator y"])
    fig.tight_layout()
    fig.savefig(out / "ensemble_uncertainty.png", dpi=120)
    print(f"plot written to {out / 'ensemble_uncertainty.png'}")
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trajectories", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--scheduler", default=None,
                        help="address of a running Dask scheduler (default: a local cluster)")
    parser.add_argument("--out", default="pyude-examples/ensemble_uncertainty",
                        help="folder for the plot (default: %(default)s)")
    parser.add_argument("--quick", action="store_true",
                        help="500 trajectories, worker threads in this process")
    args = parser.parse_args()
    main(args.trajectories, args.workers, args.scheduler, args.out, args.quick)
