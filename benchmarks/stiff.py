"""Work-precision of pyude's stiff solvers (numba and torch backends) against scipy and
diffrax, each peer run as its own users run it, on the Bari Test Set, a batch of ROBER
parameter sets, and the first solve in a fresh process.

Peers:
- scipy `solve_ivp` (LSODA, Radau, BDF) with a plain Python/numpy right-hand side (the
  model's arithmetic on floats, no torch), with and without the analytic Jacobian (printed by
  `sympy.lambdify` from the traced model, as a careful scipy user would write it: "+jac").
- diffrax (when installed): `jax.jit` around `diffeqsolve` with Kvaerno5/4/3,
  `PIDController(rtol, atol)` (and Kvaerno5/4 with the PI coefficients that diffrax's
  documentation suggests for mildly stiff problems), float64; compile time excluded from
  the solves and reported apart (see `benchmarks/vs_diffrax.py`).
pyude: `pyude.solve(..., backend="numba")` and `backend="native"` (torch).

Single problems: ROBER (to 1e11), VDPOL (mu 1e3, to 2000), HIRES, POLLU. Every method runs
over an rtol sweep (atol = rtol x the problem's ratio); error is the Test Set's mescd at the
final time against its reference. Every run is timed in interleaved rounds (one call of
each run per round), and its time is the median over rounds, so the ratios come from one
window of the machine's load, which is printed with them. Each pyude run is held against
each peer's fastest run with equal or better mescd (any method, any rtol).

Batch: ROBER to 1e5 with 256 parameter sets (rates scaled by factors in [0.5, 2]): one numba
batch against a Python loop of scipy Radau solves and diffrax's `jit(vmap(Kvaerno5))`,
error as the smallest mescd over the members against a tight reference.

First solves: a fresh process importing pyude and solving HIRES once per solver family,
with every cache cold (numba's cache and pyude's model cache in empty folders), with only
the model cold (pyude's kernels from numba's cache), and with both caches warm.

    python benchmarks/stiff.py [--sections single batch first] [--repeat 3] [--batch 256]

Writes benchmarks/results/stiff.json and stiff.md (appends a section per run).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
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
from pyude.symbolic import trace

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))
import vs_diffrax
from problems import HIRES_T321, POLLU_T60, ROBER_T1E11, VDPOL_MU1000_T2000, mescd

# name: (problem factory, model function, Test Set reference at t1, atol / rtol)
PROBLEMS = {
    "ROBER": (lambda: P.rober_problem(tspan=(0.0, 1e11)), P.rober, ROBER_T1E11, 1e-4),
    "HIRES": (P.hires_problem, P.hires, HIRES_T321, 1.0),
    "VDPOL": (P.vdpol_problem, P.vdpol, VDPOL_MU1000_T2000, 1.0),
    "POLLU": (P.pollu_problem, P.pollu, POLLU_T60, 1.0),
}
NUMBA = {"Rodas5P": pyude.Rodas5P, "Rodas4": pyude.Rodas4, "KenCarp4": pyude.KenCarp4,
         "default": lambda: None}
NATIVE = {"Rodas5P": pyude.Rodas5P, "KenCarp4": pyude.KenCarp4}
SCIPY = ("LSODA", "Radau", "BDF")
PYUDE_RTOLS = (1e-4, 1e-5, 1e-6, 1e-7, 1e-8)
NATIVE_RTOLS = (1e-4, 1e-6, 1e-8)
PEER_RTOLS = (1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9, 1e-10)
TARGET_RTOL = 1e-6


def load() -> str:
    return "load {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())


# --- the peers' right-hand sides, as their users write them -----------------------------

def _floats(params) -> SimpleNamespace:
    return SimpleNamespace(**{k: float(v) for k, v in params.items()})


def numpy_rhs(model, params):
    """f(t, y) for scipy: the model's arithmetic on Python floats (`y.tolist()`, faster than
    on numpy scalars), returned as an array."""
    p = _floats(params)
    return lambda t, y: np.array(model(y.tolist(), p, t))


def numpy_jac(model, problem):
    """The analytic Jacobian, from sympy, lambdified to numpy with the parameters as
    numbers."""
    traced = trace(model, problem.n_states, problem.p)
    values = {s: float(v) for s, v in zip(traced.params, problem.p)}
    J = sympy.Matrix(traced.exprs).jacobian(traced.states).subs(values)
    fn = sympy.lambdify([traced.t, traced.states], J, "numpy")
    return lambda t, y: np.asarray(fn(t, y), dtype=float)


def _scipy_run(f, jac, t1, u0, method, rtol, atol):
    kw = dict(jac=jac) if jac is not None else {}
    sol = solve_ivp(f, (0.0, t1), u0, method=method, rtol=rtol, atol=atol, t_eval=[t1], **kw)
    if not sol.success or np.shape(sol.y)[-1] == 0:
        return np.full(len(u0), np.nan), False
    return sol.y[:, -1], True


# --- timing ---------------------------------------------------------------------------------

def interleaved(runs: dict, repeat: int, warm=lambda key: True) -> dict:
    """runs: key -> fn() -> (answer, ok). One untimed call of each run for which `warm(key)`
    (compiles, caches), then `repeat` rounds of one timed call of each; returns
    key -> (median seconds, answer, ok, all times)."""
    answers = {key: fn() for key, fn in runs.items() if warm(key)}
    times = {key: [] for key in runs}
    for _ in range(repeat):
        for key, fn in runs.items():
            start = time.perf_counter()
            answers[key] = fn()
            times[key].append(time.perf_counter() - start)
    return {key: (statistics.median(times[key]), *answers[key], times[key]) for key in runs}


# --- single problems ---------------------------------------------------------------------

def single_runs(name: str, with_diffrax: bool, with_native: bool) -> tuple[dict, dict]:
    """Every (library, method, rtol) run on problem `name`, and diffrax's compile times."""
    make, model, _, ratio = PROBLEMS[name]
    problem = make()
    t1, u0 = problem.tspan[1], problem.u0.numpy()
    runs, compiles = {}, {}

    def pyude_run(solver, rtol, backend):
        def go():
            sol = pyude.solve(problem, solver, rtol=rtol, atol=rtol * ratio, saveat=[t1],
                              maxiters=10**6, backend=backend, throw=False)
            return sol.u[-1].numpy(), bool(sol.success)
        return go
    for label, make_solver in NUMBA.items():
        for rtol in PYUDE_RTOLS:
            runs["numba", label, rtol] = pyude_run(make_solver(), rtol, "numba")
    if with_native:
        for label, make_solver in NATIVE.items():
            for rtol in NATIVE_RTOLS:
                runs["torch", label, rtol] = pyude_run(make_solver(), rtol, "native")
    f, jac = numpy_rhs(model, problem.p), numpy_jac(model, problem)
    for method in SCIPY:
        for rtol in PEER_RTOLS:
            for j, suffix in ((None, ""), (jac, "+jac")):
                runs["scipy", method + suffix, rtol] = (
                    lambda m=method, j=j, r=rtol: _scipy_run(f, j, t1, u0, m, r, r * ratio))
    if with_diffrax:
        for method in vs_diffrax.SOLVERS:
            compiles[method], run = vs_diffrax.single(model, dict(problem.p.items()), u0, t1,
                                                      method)
            for rtol in PEER_RTOLS:
                runs["diffrax", method, rtol] = lambda run=run, r=rtol: run(r, r * ratio)
    return runs, compiles


def run_single(names, repeat: int, with_diffrax: bool, with_native: bool) -> dict:
    rows, compiles = [], {}
    for name in names:
        ref, ratio = PROBLEMS[name][2:]
        runs, compiles[name] = single_runs(name, with_diffrax, with_native)
        before = load()
        timed = interleaved(runs, repeat)
        after = load()
        for (lib, method, rtol), (secs, y, ok, times) in timed.items():
            digits = mescd(y, ref, rtol, rtol * ratio) if ok else -np.inf
            digits = digits if np.isfinite(digits) else -np.inf
            rows.append(dict(problem=name, library=lib, method=method, rtol=rtol,
                             ms=1e3 * secs, ms_all=[1e3 * t for t in times], mescd=digits,
                             success=ok))
        print(f"{name}: {len(runs)} runs x {repeat} rounds ({before} before, {after} after); "
              f"diffrax compile {', '.join(f'{k} {v:.1f} s' for k, v in compiles[name].items())}",
              flush=True)
    return dict(rows=rows, diffrax_compile_s=compiles, load=load())


def fastest_as_accurate(rows, problem, library, digits):
    """`library`'s fastest successful run on `problem` with mescd >= digits, or None."""
    theirs = [r for r in rows if r["problem"] == problem and r["library"] == library
              and r["success"] and r["mescd"] >= digits]
    return min(theirs, key=lambda r: r["ms"]) if theirs else None


def matched(rows, peers) -> list[dict]:
    """Each pyude run with each peer's fastest run at equal or better error."""
    out = []
    for mine in rows:
        if mine["library"] not in ("numba", "torch") or not mine["success"]:
            continue
        entry = dict(mine)
        for peer in peers:
            best = fastest_as_accurate(rows, mine["problem"], peer, mine["mescd"])
            entry[peer] = best and dict(method=best["method"], rtol=best["rtol"],
                                        ms=best["ms"], mescd=best["mescd"],
                                        lead=best["ms"] / mine["ms"])
        out.append(entry)
    return out


def targets(pairs, peers) -> list[dict]:
    """Per problem at rtol 1e-6: the numba run with the largest lead over scipy among
    those that also beat diffrax (else the largest lead over scipy): met when that lead is
    at least 10x and diffrax's is above 1x. No peer run as accurate counts as a lead."""
    out = []
    for name in dict.fromkeys(p["problem"] for p in pairs):
        mine = [p for p in pairs if p["problem"] == name and p["library"] == "numba"
                and p["rtol"] == TARGET_RTOL]

        def lead(p, peer):
            return float("inf") if p.get(peer) is None else p[peer]["lead"]
        ok = [p for p in mine if lead(p, "scipy") >= 10
              and ("diffrax" not in peers or lead(p, "diffrax") > 1)]
        pool = ok or mine
        if not pool:
            continue
        best = max(pool, key=lambda p: lead(p, "scipy"))
        out.append(dict(problem=name, run=best, met=bool(ok)))
    return out


def _x(ratio: float) -> str:
    return f"{ratio:.1f}x" if ratio >= 1 else f"{ratio:.2g}x"


def _peer_cell(p, peer):
    b = p.get(peer)
    if b is None:
        return "none as accurate | -"
    return (f"{b['method']} @{b['rtol']:.0e}: {b['ms']:.2f} ms ({b['mescd']:.2f}) | "
            f"{_x(b['lead'])}")


def single_tables(result, peers) -> list[str]:
    rows = result["rows"]
    lines = [f"### Every run (median ms over rounds; mescd; {result['load']} at the end)", "",
             "| problem | library | method | rtol | ms | mescd |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['problem']} | {r['library']} | {r['method']} | {r['rtol']:.0e} | "
                     f"{r['ms']:.3f} | {r['mescd']:.2f}{'' if r['success'] else ' FAILED'} |")
    pairs = matched(rows, peers)
    head = "| problem | pyude run | ms | mescd | " + " | ".join(
        f"{p}'s fastest as accurate | lead" for p in peers) + " |"
    lines += ["", ("### Each pyude run against each peer's fastest run at equal or better "
                   "error"), "", head, "|" + "---|" * (4 + 2 * len(peers))]
    for p in pairs:
        lines.append(f"| {p['problem']} | {p['library']} {p['method']} @{p['rtol']:.0e} | "
                     f"{p['ms']:.3f} | {p['mescd']:.2f} | "
                     + " | ".join(_peer_cell(p, peer) for peer in peers) + " |")
    lines += ["", (f"### Targets at rtol {TARGET_RTOL:.0e}: numba >= 10x scipy's best and "
                   "faster than diffrax's best, at equal or better error"), ""]
    for t in targets(pairs, peers):
        p = t["run"]
        lines.append(f"- {t['problem']}: numba {p['method']} {p['ms']:.3f} ms (mescd "
                     f"{p['mescd']:.2f}); " + "; ".join(
                         f"{peer} {_peer_cell(p, peer).replace(' | ', ', lead ')}"
                         for peer in peers) + f": {'met' if t['met'] else 'NOT met'}")
    if result["diffrax_compile_s"] and any(result["diffrax_compile_s"].values()):
        lines += ["", "diffrax compile (first call of the jitted solve, excluded above): "
                  + "; ".join(f"{name} " + ", ".join(f"{m} {s:.1f} s" for m, s in c.items())
                              for name, c in result["diffrax_compile_s"].items())]
    return lines


# --- ROBER x B ----------------------------------------------------------------------------

def run_batch(count: int, rounds: int, with_diffrax: bool) -> dict:
    """ROBER to 1e5 with `count` parameter sets, atol = 1e-4 rtol, each method at a few
    rtols; each numba run is held against each peer's fastest run at equal or better error
    (the smallest mescd over the members, against numba Rodas5P at rtol 1e-12)."""
    problem = P.rober_problem(tspan=(0.0, 1e5))
    t1, ratio = 1e5, 1e-4
    rng = np.random.default_rng(0)
    rates = rng.uniform(0.5, 2.0, size=(count, 3)) * [0.04, 3e7, 1e4]
    params = dict(k1=rates[:, 0], k2=rates[:, 1], k3=rates[:, 2])
    u0 = np.array([1.0, 0.0, 0.0])
    batch = problem.remake(u0=torch.tensor(u0).expand(count, 3).clone(),
                           p={k: torch.tensor(v) for k, v in params.items()})

    def pyude_batch(solver, backend, rtol):
        def go():
            sol = pyude.solve(batch, solver, rtol=rtol, atol=rtol * ratio, saveat=[t1],
                              backend=backend, throw=False)
            return sol.u[-1].numpy(), bool(sol.success)
        return go
    members = [dict(k1=a, k2=b, k3=c) for a, b, c in rates]
    fs = [numpy_rhs(P.rober, m) for m in members]
    jac = _rober_jac()

    def scipy_loop(with_jac, rtol):
        def go():
            out = [_scipy_run(f, (lambda t, y, m=m: jac(y, m)) if with_jac else None, t1, u0,
                              "Radau", rtol, rtol * ratio) for f, m in zip(fs, members)]
            return np.array([y for y, _ in out]), all(ok for _, ok in out)
        return go
    runs = {}
    for rtol in (1e-6, 1e-7):
        runs["numba", "Rodas5P", rtol] = pyude_batch(pyude.Rodas5P(), "numba", rtol)
        runs["numba", "KenCarp4", rtol] = pyude_batch(pyude.KenCarp4(), "numba", rtol)
    runs["torch", "Rodas5P", 1e-6] = pyude_batch(pyude.Rodas5P(), "native", 1e-6)
    for rtol in (1e-5, 1e-6):
        runs["scipy", "Radau loop", rtol] = scipy_loop(False, rtol)
        runs["scipy", "Radau+jac loop", rtol] = scipy_loop(True, rtol)
    compile_s = None
    if with_diffrax:
        compile_s = {}
        for method in ("Kvaerno5", "Kvaerno5 PI"):
            compile_s[method], run = vs_diffrax.batch(P.rober, params, u0, t1, method)
            for rtol in (1e-6, 1e-7, 1e-8):
                runs["diffrax", f"jit(vmap({method}))", rtol] = (
                    lambda run=run, r=rtol: run(r, r * ratio))
    ref, _ = pyude_batch(pyude.Rodas5P(), "numba", 1e-12)()
    check = min(mescd(_scipy_run(fs[i], None, t1, u0, "Radau", 1e-12, 1e-16)[0], ref[i],
                      1e-6, 1e-10) for i in range(4))
    before = load()
    timed = interleaved(runs, rounds, warm=lambda key: key[0] != "scipy")
    after = load()
    rows = [dict(problem="ROBER batch", library=lib, method=method, rtol=rtol, ms=1e3 * s,
                 ms_all=[1e3 * x for x in times], success=ok,
                 mescd=min(mescd(y[i], ref[i], rtol, rtol * ratio) for i in range(count)))
            for (lib, method, rtol), (s, y, ok, times) in timed.items()]
    return dict(count=count, rows=rows, diffrax_compile_s=compile_s,
                reference_check_mescd=check, load_before=before, load_after=after)


def _rober_jac():
    def jac(y, m):
        k1, k2, k3 = m["k1"], m["k2"], m["k3"]
        return np.array([[-k1, k3 * y[2], k3 * y[1]],
                         [k1, -2 * k2 * y[1] - k3 * y[2], -k3 * y[1]],
                         [0.0, 2 * k2 * y[1], 0.0]])
    return jac


def batch_tables(b, peers) -> list[str]:
    lines = [(f"### ROBER x{b['count']} to t = 1e5, atol = 1e-4 rtol ({b['load_before']} "
              f"before, {b['load_after']} after)"), "",
             "| library | method | rtol | median ms | smallest mescd over members |",
             "|---|---|---|---|---|"]
    for r in b["rows"]:
        lines.append(f"| {r['library']} | {r['method']} | {r['rtol']:.0e} | {r['ms']:.1f} | "
                     f"{r['mescd']:.2f}{'' if r['success'] else ' FAILED'} |")
    head = "| pyude run | ms | mescd | " + " | ".join(
        f"{p}'s fastest as accurate | lead" for p in peers) + " |"
    lines += ["", head, "|" + "---|" * (3 + 2 * len(peers))]
    for p in matched(b["rows"], peers):
        lines.append(f"| {p['library']} {p['method']} @{p['rtol']:.0e} | {p['ms']:.1f} | "
                     f"{p['mescd']:.2f} | " + " | ".join(_peer_cell(p, peer) for peer in peers)
                     + " |")
    if b["diffrax_compile_s"] is not None:
        lines.append("\ndiffrax compile (first call, excluded): " + ", ".join(
            f"{m} {s:.1f} s" for m, s in b["diffrax_compile_s"].items()) + ".")
    lines.append(f"Reference: numba Rodas5P at rtol 1e-12; scipy Radau at rtol 1e-12 agrees "
                 f"with it to mescd {b['reference_check_mescd']:.1f} or better on 4 members.")
    return lines


# --- first solve in a fresh process ----------------------------------------------------

_FIRST = """
import json, sys, time
start, cpu = time.perf_counter(), time.process_time()
import pyude
from pyude.problems import hires_problem
imported, imported_cpu = time.perf_counter(), time.process_time()
solver = {"erk": pyude.Tsit5, "rosenbrock": pyude.Rodas5P, "esdirk": pyude.KenCarp4,
          "default": lambda: None}[sys.argv[1]]()
pyude.solve(hires_problem(), solver, rtol=1e-6, saveat=[321.8122], backend="numba")
end, end_cpu = time.perf_counter(), time.process_time()
print(json.dumps(dict(wall=end - start, cpu=end_cpu - cpu, import_wall=imported - start,
                      solve_wall=end - imported, solve_cpu=end_cpu - imported_cpu)))
"""


def _fresh(family, env) -> dict:
    out = subprocess.run([sys.executable, "-c", _FIRST, family], env=env, capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_first() -> dict:
    """Per family: every cache cold (numba's cache in an empty folder, the same as clearing
    the kernels' __pycache__, and an empty PYUDE_CACHE_DIR), then again with both warm; and
    with only the model cold (the kernels from numba's default cache, warmed first)."""
    out = {}
    base = dict(os.environ, PYTHONPATH=str(ROOT))
    base.pop("NUMBA_CACHE_DIR", None)
    for family in ("erk", "rosenbrock", "esdirk", "default"):
        with tempfile.TemporaryDirectory() as numba_cache, \
                tempfile.TemporaryDirectory() as model_cache, \
                tempfile.TemporaryDirectory() as model_only:
            env = dict(base, NUMBA_CACHE_DIR=numba_cache, PYUDE_CACHE_DIR=model_cache)
            row = dict(load=load(), cold=_fresh(family, env), cached=_fresh(family, env))
            _fresh(family, dict(base, PYUDE_CACHE_DIR=model_cache))   # warms the kernels
            row["model_cold"] = _fresh(family, dict(base, PYUDE_CACHE_DIR=model_only))
        out[family] = row
        print(f"first solve {family}: " + ", ".join(
            f"{k} {v['wall']:.1f} s" for k, v in row.items() if k != "load")
            + f" ({row['load']})", flush=True)
    return out


def first_tables(first) -> list[str]:
    lines = [("### First HIRES solve in a fresh process: whole process (import of pyude "
              "included), wall s / CPU s, and in brackets the solve after the import, wall s"),
             "",
             ("| family | every cache cold | model cold, kernels cached | both cached | "
              "import alone (cached run) | load at start |"), "|---|---|---|---|---|---|"]
    for family, r in first.items():
        cell = [f"{r[k]['wall']:.1f} / {r[k]['cpu']:.1f} ({r[k]['solve_wall']:.2f})"
                for k in ("cold", "model_cold", "cached")]
        lines.append(f"| {family} | " + " | ".join(cell)
                     + f" | {r['cached']['import_wall']:.1f} | {r['load']} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[1:]))
    parser.add_argument("--sections", nargs="+", default=["single", "batch", "first"],
                        choices=["single", "batch", "first"])
    parser.add_argument("--repeat", type=int, default=3,
                        help="timed rounds per single-problem run (median reported)")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--batch-rounds", type=int, default=2)
    parser.add_argument("--problems", nargs="+", default=list(PROBLEMS), choices=list(PROBLEMS))
    parser.add_argument("--no-diffrax", action="store_true")
    parser.add_argument("--no-native", action="store_true", help="skip the torch backend rows")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    missing = None if args.no_diffrax else vs_diffrax.available()
    if missing:
        print(missing)
    with_diffrax = not args.no_diffrax and missing is None
    peers = ["scipy"] + (["diffrax"] if with_diffrax else [])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result, lines = dict(start=time.strftime("%Y-%m-%d %H:%M"), load=load()), []
    lines.append(f"## {result['start']} ({result['load']} at start, "
                 f"{os.cpu_count()} cores): {' '.join(sys.argv[1:]) or 'defaults'}")
    stamp = result["start"].replace(" ", "T").replace(":", "")
    path = out / f"stiff-{stamp}.json"
    sections = dict(single=lambda: run_single(args.problems, args.repeat, with_diffrax,
                                              not args.no_native),
                    batch=lambda: run_batch(args.batch, args.batch_rounds, with_diffrax),
                    first=run_first)
    tables = dict(single=lambda r: single_tables(r, peers),
                  batch=lambda r: batch_tables(r, peers), first=first_tables)
    for section in args.sections:
        result[section] = sections[section]()
        lines += [""] + tables[section](result[section])
        path.write_text(json.dumps(result, indent=1, default=str))
    text = "\n".join(lines) + "\n\n"
    print("\n" + text)
    with open(out / "stiff.md", "a") as handle:
        handle.write(text)
    print(f"wrote {path} and appended to {out / 'stiff.md'}")


if __name__ == "__main__":
    main()
