"""Discovery on systems the pipeline was not developed on, run as a user would: for each
system a CSV of noisy observations and a problem file with the known physics, then
`pyude discover --data obs.csv --problem system.py:PROBLEM` with the defaults.

Systems (2-3 states, unknown polynomial terms of degree 2-3, 51 observations):
- brusselator: x' = a - (b + 1) x + x^2 y, y' = b x - x^2 y; unknown x^2 y in both.
- duffing: x' = v, v' = -delta v - alpha x - beta x^3; unknown -beta x^3.
- sir: s' = -beta s i, i' = beta s i - gamma i, r' = gamma i; unknown beta s i in both.

Success: every equation of the discovered model has exactly the true model's terms. Each
run is a separate process (a fresh interpreter, as the CLI is), timed from start to exit.

    python benchmarks/discovery_systems.py [--systems ...] [--noise 0.01 0.05] [--seeds 3]
                                           [--jobs 1] [--timeout 900] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

# The problem files, as a user writes them: only the known physics and the network's place.
PROBLEM_FILES = {
    "brusselator": """
        from pyude.pipeline import DiscoveryProblem

        def ude(u, p, t, nn):
            x, y = u
            m1, m2 = nn(u)
            return [p.a - (p.b + 1) * x + m1, p.b * x + m2]

        PROBLEM = DiscoveryProblem("brusselator", ude, dict(a=1.0, b=3.0), ["x", "y"], 2)
        """,
    "duffing": """
        from pyude.pipeline import DiscoveryProblem

        def ude(u, p, t, nn):
            x, v = u
            (m,) = nn(u)
            return [v, -p.delta * v - p.alpha * x + m]

        PROBLEM = DiscoveryProblem("duffing", ude, dict(alpha=1.0, delta=0.1), ["x", "v"], 1)
        """,
    "sir": """
        from pyude.pipeline import DiscoveryProblem

        def ude(u, p, t, nn):
            s, i, r = u
            m1, m2 = nn(u)
            return [m1, m2 - p.gamma * i, p.gamma * i]

        PROBLEM = DiscoveryProblem("sir", ude, dict(gamma=0.15), ["s", "i", "r"], 2)
        """,
}


def _brusselator(u, t):
    x, y = u
    return [1.0 - 4.0 * x + x * x * y, 3.0 * x - x * x * y]


def _duffing(u, t):
    x, v = u
    return [v, -0.1 * v - x - 0.5 * x**3]


def _sir(u, t):
    s, i, r = u
    return [-0.6 * s * i, 0.6 * s * i - 0.15 * i, 0.15 * i]


# the truth: each system's right-hand side, its set-up, and each equation's terms
SYSTEMS = {
    "brusselator": dict(f=_brusselator, u0=[1.0, 1.0], t_end=20.0, names=["x", "y"],
                        terms=[{"1", "x", "x**2*y"}, {"x", "x**2*y"}]),
    "duffing": dict(f=_duffing, u0=[2.0, 0.0], t_end=15.0, names=["x", "v"],
                    terms=[{"v"}, {"v", "x", "x**3"}]),
    "sir": dict(f=_sir, u0=[0.95, 0.05, 0.0], t_end=40.0, names=["s", "i", "r"],
                terms=[{"i*s"}, {"i*s", "i"}, {"i"}]),
}


def write_case(folder: Path, system: str, noise: float, seed: int, n_obs: int = 51) -> float:
    """obs.csv (t, states) with Gaussian noise of `noise` times each state's mean absolute
    value, and the problem file; returns the noise's actual mean square (what a fit at the
    noise level reaches)."""
    from scipy.integrate import solve_ivp
    spec = SYSTEMS[system]
    t = np.linspace(0.0, spec["t_end"], n_obs)
    sol = solve_ivp(lambda t_, u: spec["f"](u, t_), (0.0, spec["t_end"]), spec["u0"],
                    t_eval=t, rtol=1e-11, atol=1e-11, method="DOP853")
    truth = sol.y.T
    rng = np.random.default_rng(seed)
    data = truth + noise * np.abs(truth).mean(axis=0) * rng.standard_normal(truth.shape)
    folder.mkdir(parents=True, exist_ok=True)
    np.savetxt(folder / "obs.csv", np.column_stack([t, data]), delimiter=",",
               header=",".join(["t", *spec["names"]]), comments="")
    (folder / f"{system}.py").write_text(textwrap.dedent(PROBLEM_FILES[system]).lstrip())
    return float(np.mean((data - truth) ** 2))


def one_run(folder: Path, system: str, noise: float, seed: int, timeout: float) -> dict:
    write_case(folder, system, noise, seed)
    cmd = [sys.executable, "-m", "pyude.cli", "discover", "--data", str(folder / "obs.csv"),
           "--problem", f"{folder / system}.py:PROBLEM", "--out", str(folder / "report"),
           "--seed", str(seed), "--quiet", "--no-plots", "--force"]
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT),
                                             "OMP_NUM_THREADS": "1"})
        status = "ok" if proc.returncode == 0 else \
            f"exit {proc.returncode}: {proc.stderr.strip()[-300:]}"
    except subprocess.TimeoutExpired:
        status = f"timeout after {timeout:g} s"
    return row(folder, system, noise, seed, status, time.perf_counter() - start)


def row(folder: Path, system: str, noise: float, seed: int, status: str,
        seconds: float | None = None) -> dict:
    """One run's figures from its report folder (a run that stopped leaves its partial
    results.json: the stage it was in and the structures refit so far)."""
    with tempfile.TemporaryDirectory() as scratch:       # the same seeded noise again
        true_noise = write_case(Path(scratch), system, noise, seed)
    results_file = folder / "report" / "results.json"
    r = json.loads(results_file.read_text()) if results_file.exists() else {}
    if r.get("status") in ("running", "failed", "interrupted") and status == "ok":
        status = "did not finish" if r["status"] == "running" else r["status"]
    if r.get("status") != "done":
        status += f" (in the {r.get('stage') or r.get('failed', {}).get('stage', '?')} stage)"
    tried = r.get("structures_tried", [])
    out = dict(system=system, noise=noise, seed=seed, found=False, status=status,
               seconds=seconds if seconds is not None else r.get("seconds"),
               timings=r.get("timings"), cpu_timings=r.get("cpu_timings"),
               true_noise_mse=true_noise, tried=len(tried),
               abandoned=sum(bool(c.get("abandoned")) for c in tried))
    if r.get("status") == "done":
        fit = r["fit"]
        out.update(found=[set(terms) for terms in r["discovered"]["terms"]]
                   == SYSTEMS[system]["terms"], status="ok",
                   equations=r["discovered"]["equations"], fit_mse=fit["best_loss"],
                   noise_estimate=fit.get("noise_mse"), holdout=r.get("holdout"),
                   warnings=r.get("warnings"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--systems", nargs="+", default=["duffing", "sir", "brusselator"],
                        choices=list(SYSTEMS))
    parser.add_argument("--noise", type=float, nargs="+", default=[0.01, 0.05])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=1, help="runs at once (one per core)")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per run")
    parser.add_argument("--out", default="benchmarks/results/discovery_systems")
    parser.add_argument("--table-only", action="store_true",
                        help="run nothing: the table from the report folders already in --out")
    args = parser.parse_args()
    out = Path(args.out)
    cases = [(s, n, seed) for s in args.systems for n in args.noise for seed in range(args.seeds)]
    if args.table_only:
        rows = [row(out / f"{s}-{n}-{seed}", s, n, seed, "ok") for s, n, seed in cases
                if (out / f"{s}-{n}-{seed}").exists()]
    else:
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            rows = list(pool.map(lambda c: one_run(out / f"{c[0]}-{c[1]}-{c[2]}", *c,
                                                   args.timeout), cases))
    lines = ["| system | noise | seed | found | wall seconds (CPU seconds) | network MSE / true "
             "noise | estimate / true noise | refits (abandoned) | held-out error | status |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ok = r["status"] == "ok"
        ratio = lambda key: (f"{r[key] / r['true_noise_mse']:.2f}"  # noqa: E731
                             if ok and r.get(key) else "-")
        cpu = r.get("cpu_timings") or {}
        timing = (f"{r['seconds']:.0f}" if r["seconds"] is not None else "-") + (
            f" (CPU fit {cpu.get('fit', 0):.0f} + search {cpu.get('refit', 0):.0f})"
            if cpu else "")
        held = r.get("holdout") or {}
        held_text = (f"{held['discovered']:.1%} (noise {held['noise_level']:.1%})"
                     if isinstance(held.get("discovered"), float) else "-")
        lines.append(f"| {r['system']} | {r['noise']} | {r['seed']} | "
                     f"{'yes' if r['found'] else 'NO'} | {timing} | {ratio('fit_mse')} | "
                     f"{ratio('noise_estimate')} | "
                     f"{r.get('tried', '-')} ({r.get('abandoned', '-')}) | {held_text} | "
                     f"{r['status'][:60]} |")
    for s in args.systems:
        mine = [r for r in rows if r["system"] == s]
        if not mine:
            continue
        lines.append(f"\n{s}: found in {sum(r['found'] for r in mine)}/{len(mine)} runs, "
                     f"median {np.median([r['seconds'] or 0 for r in mine]):.0f} s, "
                     f"max {max(r['seconds'] or 0 for r in mine):.0f} s")
    text = "\n".join(lines)
    print(text)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(rows, indent=2, default=str))
    (out / "summary.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
