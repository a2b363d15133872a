"""The numba backend against scipy's `solve_ivp` on the Bari Test Set, at equal error, with
scipy given what its users write: a plain Python/numpy right-hand side (the same model
functions, called on a numpy array with float parameters), with and without a Jacobian
(printed by `sympy.lambdify` from the traced model, as a careful scipy user would).

Error is the Test Set's mescd at the final time; time is wall-clock, best of `--repeat`
interleaved rounds. The numba solvers run at rtol 1e-6; each scipy method runs at rtol
1e-6 down to 1e-9, and "scipy's best" is its fastest run whose mescd is at least the numba
run's. Then ROBER x256 parameter sets (one batch on the numba backend, parallel across
cores) against a loop of scipy Radau solves, and the first solve in a fresh process per
family, cold (an empty numba cache) and from the cache.

    python benchmarks/numba_stiff.py [--repeat 5] [--batch 256] [--no-compile]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import sympy
import torch
from scipy.integrate import solve_ivp

import pyude
from pyude import problems as P
from pyude.backends.numba import solve_problem
from pyude.symbolic import trace

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from problems import HIRES_T321, POLLU_T60, ROBER_T1E11, VDPOL_MU1000_T2000, mescd  # noqa: E402

PROBLEMS = {
    "HIRES": (P.hires_problem, P.hires, HIRES_T321, 1.0),
    "ROBER": (lambda: P.rober_problem(tspan=(0.0, 1e11)), P.rober, ROBER_T1E11, 1e-4),
    "VDPOL": (P.vdpol_problem, P.vdpol, VDPOL_MU1000_T2000, 1.0),
    "POLLU": (P.pollu_problem, P.pollu, POLLU_T60, 1.0),
}
NUMBA_SOLVERS = {"Rodas5P": pyude.Rodas5P(), "Rodas4": pyude.Rodas4(),
                 "KenCarp4": pyude.KenCarp4(), "default": None}
SCIPY_METHODS = ("LSODA", "Radau", "BDF")
SCIPY_RTOLS = (1e-6, 1e-7, 1e-8, 1e-9)
RTOL = 1e-6


def _floats(problem):
    return SimpleNamespace(**{k: float(v) for k, v in problem.p.items()})


def numpy_rhs(model, problem):
    """f(t, y) as a scipy user writes it: the model's arithmetic on floats."""
    p = _floats(problem)
    return lambda t, y: np.array(model(y, p, t))


def numpy_jac(model, problem):
    """The Jacobian from sympy, lambdified to numpy with the parameters substituted."""
    traced = trace(model, problem.n_states, problem.p)
    values = {s: float(v) for s, v in zip(traced.params, problem.p)}
    J = sympy.Matrix(traced.exprs).jacobian(traced.states).subs(values)
    fn = sympy.lambdify([traced.t, traced.states], J, "numpy")
    return lambda t, y: np.asarray(fn(t, y), dtype=float)


def _best(fn, repeat):
    times, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def run_single(repeat: int) -> list[dict]:
    rows = []
    for name, (make, model, ref, ratio) in PROBLEMS.items():
        problem = make()
        t1, u0 = problem.tspan[1], problem.u0.numpy()
        f, jac = numpy_rhs(model, problem), numpy_jac(model, problem)
        runs = {}
        for label, solver in NUMBA_SOLVERS.items():
            def go(solver=solver):
                sol = solve_problem(problem, solver, rtol=RTOL, atol=RTOL * ratio,
                                    saveat=[t1], maxiters=10**6)
                return sol.u[-1].numpy()
            go()                                    # compiled and warm
            runs[("numba", label, RTOL)] = go
        for method in SCIPY_METHODS:
            for rtol in SCIPY_RTOLS:
                for with_jac in (False, True):
                    def go(method=method, rtol=rtol, with_jac=with_jac):
                        kw = dict(jac=jac) if with_jac else {}
                        sol = solve_ivp(f, (0.0, t1), u0, method=method, rtol=rtol,
                                        atol=rtol * ratio, t_eval=[t1], **kw)
                        if not sol.success or np.shape(sol.y)[-1] == 0:
                            return np.full(len(u0), np.nan)      # counted as no digits
                        return sol.y[:, -1]
                    runs[("scipy", method + ("+jac" if with_jac else ""), rtol)] = go
        best = {key: float("inf") for key in runs}
        answers = {}
        for _ in range(repeat):                     # interleaved rounds
            for key, go in runs.items():
                elapsed, answers[key] = _best(go, 1)
                best[key] = min(best[key], elapsed)
        for key in runs:
            side, label, rtol = key
            digits = mescd(answers[key], ref, rtol, rtol * ratio)
            if not np.isfinite(digits):
                digits = -np.inf
            rows.append(dict(problem=name, side=side, method=label, rtol=rtol,
                             ms=1e3 * best[key], mescd=digits))
    return rows


def _scipy_best(rows: list[dict], name: str, digits: float) -> dict | None:
    """scipy's fastest run on `name` with at least `digits` correct digits."""
    theirs = [r for r in rows if r["problem"] == name and r["side"] == "scipy"
              and r["mescd"] >= digits]
    return min(theirs, key=lambda r: r["ms"]) if theirs else None


def summary(rows: list[dict]) -> list[str]:
    """Per problem, the numba run with the largest lead over scipy's best run at equal or
    better error (each numba run is held against scipy's fastest run that is as accurate)."""
    lines = []
    for name in PROBLEMS:
        leads = []
        for mine in (r for r in rows if r["problem"] == name and r["side"] == "numba"):
            best = _scipy_best(rows, name, mine["mescd"])
            if best is not None:
                leads.append((best["ms"] / mine["ms"], mine, best))
        if not leads:
            lines.append(f"{name}: no scipy run reached the numba runs' error")
            continue
        lead, mine, best = max(leads, key=lambda x: x[0])
        lines.append(f"{name}: numba {mine['method']} {mine['ms']:.3f} ms (mescd "
                     f"{mine['mescd']:.2f}); scipy's best at equal or better error: "
                     f"{best['method']} at rtol {best['rtol']:.0e}, {best['ms']:.2f} ms "
                     f"(mescd {best['mescd']:.2f}): {lead:.0f}x")
    return lines


def run_batch(count: int) -> list[str]:
    problem = P.rober_problem(tspan=(0.0, 1e5))
    rng = np.random.default_rng(0)
    factors = rng.uniform(0.5, 2.0, size=(count, 3))
    rates = torch.tensor(factors * [0.04, 3e7, 1e4], dtype=torch.float64)
    batch = problem.remake(u0=torch.tensor([1.0, 0, 0], dtype=torch.float64).expand(count, 3)
                           .clone(), p=dict(k1=rates[:, 0], k2=rates[:, 1], k3=rates[:, 2]))
    kw = dict(rtol=1e-6, atol=1e-10, saveat=[1e5])
    solve_problem(batch, pyude.Rodas5P(), **kw)
    numba_s, sol = _best(lambda: solve_problem(batch, pyude.Rodas5P(), **kw), 3)
    start = time.perf_counter()
    finals = []
    for k1, k2, k3 in rates.numpy():
        f = numpy_rhs(P.rober, problem.remake(p=dict(k1=k1, k2=k2, k3=k3)))
        out = solve_ivp(f, (0.0, 1e5), [1.0, 0, 0], method="Radau", rtol=1e-6, atol=1e-10,
                        t_eval=[1e5])
        finals.append(out.y[:, -1])
    scipy_s = time.perf_counter() - start
    diff = np.abs(sol.u[-1].numpy() - np.array(finals)).max()
    return [f"ROBER x{count} (to 1e5, rtol 1e-6): numba Rodas5P batch {1e3 * numba_s:.1f} ms, "
            f"scipy Radau loop {1e3 * scipy_s:.0f} ms: {scipy_s / numba_s:.0f}x "
            f"(largest difference between the two {diff:.1e})"]


_FIRST = """
import time, sys
start, cpu = time.perf_counter(), time.process_time()
import pyude
from pyude.backends.numba import solve_problem
from pyude.problems import hires_problem
solver = {"erk": pyude.Tsit5(), "rosenbrock": pyude.Rodas5P(), "esdirk": pyude.KenCarp4(),
          "default": None}[sys.argv[1]]
solve_problem(hires_problem(), solver, rtol=1e-6, saveat=[321.8122])
print(time.perf_counter() - start, time.process_time() - cpu)
"""


def first_solves() -> list[str]:
    """Wall time of a fresh process's import and first HIRES solve, per family: cold (numba
    compiles pyude's kernels and the model) and from the caches."""
    lines = []
    for family in ("erk", "rosenbrock", "esdirk", "default"):
        with tempfile.TemporaryDirectory() as numba_cache, \
                tempfile.TemporaryDirectory() as pyude_cache:
            env = dict(os.environ, NUMBA_CACHE_DIR=numba_cache, PYUDE_CACHE_DIR=pyude_cache,
                       PYTHONPATH=str(ROOT))
            runs = []
            for _ in range(2):
                out = subprocess.run([sys.executable, "-c", _FIRST, family], env=env,
                                     capture_output=True, text=True, check=True)
                runs.append([float(x) for x in out.stdout.strip().splitlines()[-1].split()])
        (cold, cold_cpu), (cached, cached_cpu) = runs
        lines.append(f"first solve in a fresh process ({family}): cold {cold:.1f} s wall, "
                     f"{cold_cpu:.1f} s CPU; cached {cached:.2f} s wall, {cached_cpu:.2f} s "
                     f"CPU (import of pyude included)")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--no-compile", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = run_single(args.repeat)
    (ROOT / "benchmarks" / "results").mkdir(exist_ok=True)
    (ROOT / "benchmarks" / "results" / "numba_stiff.json").write_text(json.dumps(rows))
    for r in rows:
        print(f"{r['problem']:6} {r['side']:5} {r['method']:10} rtol {r['rtol']:.0e} "
              f"{r['ms']:9.3f} ms  mescd {r['mescd']:5.2f}")
    print()
    print("\n".join(summary(rows)))
    print("\n".join(run_batch(args.batch)))
    if not args.no_compile:
        print("\n".join(first_solves()))


if __name__ == "__main__":
    main()
