"""Work-precision of pyude's stiff solvers against scipy's Radau, BDF and LSODA, and a batched
ROBER against a loop of scipy solves.

Problems from the Bari Test Set with its reference solutions: ROBER (to t = 1e11), VDPOL
(mu = 1e3, to t = 2000), HIRES, POLLU. Error is the Test Set's mescd (mixed significant
correct digits) at the final time; time is wall-clock, best of `--repeat` runs, one thread.
Neither side is given an analytic Jacobian (pyude differentiates f by forward-mode AD, or by
central differences for the "fd" variants; scipy takes finite differences). The "pred"
variants use `PredictiveController()` instead of the default PI step-size control.

    python benchmarks/stiff.py [--tols 1e-3 1e-4 1e-5 1e-6 1e-8 1e-10] [--batch 256]

The issue's target (single problems at rtol 1e-6: pyude's best no slower than scipy's best at
equal or better error) is checked from the table: scipy's fastest successful method at
rtol 1e-6 against pyude's fastest run, at any tolerance, whose mescd is at least as high.

Writes benchmarks/results/stiff.json, stiff.md and stiff.png.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

import pyude
from pyude import problems as P

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from problems import HIRES_T321, POLLU_T60, ROBER_T1E11, VDPOL_MU1000_T2000, mescd  # noqa: E402

PROBLEMS = {
    "ROBER": (lambda: P.rober_problem(tspan=(0.0, 1e11)), ROBER_T1E11, 1e-4),
    "VDPOL": (P.vdpol_problem, VDPOL_MU1000_T2000, 1.0),
    "HIRES": (P.hires_problem, HIRES_T321, 1.0),
    "POLLU": (P.pollu_problem, POLLU_T60, 1.0),
}
PYUDE = {"Rodas5P": pyude.Rodas5P(), "Rodas5P fd": pyude.Rodas5P(autodiff=False),
         "Rodas4": pyude.Rodas4(), "KenCarp4": pyude.KenCarp4(),
         "KenCarp4 fd": pyude.KenCarp4(autodiff=False),
         "Kvaerno5": pyude.Kvaerno5(), "Rosenbrock23": pyude.Rosenbrock23(),
         "TRBDF2": pyude.TRBDF2()}
# Variants with the predictive step-size controller instead of the default PI.
PREDICTIVE = {"Rodas5P fd pred": pyude.Rodas5P(autodiff=False),
              "KenCarp4 fd pred": pyude.KenCarp4(autodiff=False)}
LOW_ORDER = {"Rosenbrock23", "TRBDF2"}   # run only at rtol >= 1e-6
SCIPY = ("Radau", "BDF", "LSODA")


def scipy_rhs(prob):
    """f as a numpy function for scipy, evaluated through the same model code."""
    rhs = pyude._model.RHS(prob.f, prob.p)

    def f(t, y):
        with torch.no_grad():
            return rhs(t, torch.from_numpy(y)).numpy()
    return f


def best_time(fn, repeat):
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def work_precision(tols, repeat):
    from scipy.integrate import solve_ivp
    rows = []
    for pname, (make, ref, atol_ratio) in PROBLEMS.items():
        prob = make()
        t1 = prob.tspan[1]
        for rtol in tols:
            atol = rtol * atol_ratio
            for name, solver in {**PYUDE, **PREDICTIVE}.items():
                if name in LOW_ORDER and rtol < 1e-6:
                    continue
                control = pyude.PredictiveController() if name in PREDICTIVE else None
                secs, sol = best_time(lambda: pyude.solve(
                    prob, solver, rtol=rtol, atol=atol, saveat=[t1], maxiters=10**6,
                    controller=control), repeat)
                rows.append(dict(problem=pname, rtol=rtol, library="pyude", method=name,
                                 seconds=secs, mescd=mescd(sol.u[-1].numpy(), ref, rtol, atol),
                                 steps=sol.stats.naccept, success=bool(sol.success)))
                print(_fmt(rows[-1]), flush=True)
            f, y0 = scipy_rhs(prob), prob.u0.numpy()
            for method in SCIPY:
                secs, res = best_time(lambda: solve_ivp(f, (0.0, t1), y0, method=method,
                                                        rtol=rtol, atol=atol), repeat)
                rows.append(dict(problem=pname, rtol=rtol, library="scipy", method=method,
                                 seconds=secs, mescd=mescd(res.y[:, -1], ref, rtol, atol),
                                 steps=int(res.t.size - 1), success=bool(res.success)))
                print(_fmt(rows[-1]), flush=True)
    return rows


def _fmt(r):
    return (f"{r['problem']:6} rtol={r['rtol']:.0e} {r['library']:5} {r['method']:12} "
            f"{r['seconds'] * 1e3:9.1f} ms  mescd={r['mescd']:5.2f}  steps={r['steps']}"
            + ("" if r["success"] else "  FAILED"))


def target_check(rows, rtol=1e-6):
    """The issue's target per problem: scipy's fastest successful method at `rtol` against
    pyude's fastest successful run (any method, any tolerance in the table) whose mescd
    (the Test Set's mixed digits, with the same atol/rtol ratio for every row) is at least
    as good."""
    out = []
    for pname in PROBLEMS:
        scipy_rows = [r for r in rows if r["problem"] == pname and r["library"] == "scipy"
                      and r["rtol"] == rtol and r["success"]]
        if not scipy_rows:
            continue
        best = min(scipy_rows, key=lambda r: r["seconds"])
        ours = [r for r in rows if r["problem"] == pname and r["library"] == "pyude"
                and r["success"] and r["mescd"] >= best["mescd"]]
        mine = min(ours, key=lambda r: r["seconds"]) if ours else None
        out.append(dict(problem=pname, scipy=best, pyude=mine,
                        met=mine is not None and mine["seconds"] <= best["seconds"]))
    return out


def _fmt_target(c):
    s, p = c["scipy"], c["pyude"]
    theirs = f"scipy {s['method']} {s['seconds'] * 1e3:.0f} ms (mescd {s['mescd']:.2f})"
    ours = "none as accurate" if p is None else (
        f"pyude {p['method']} at rtol {p['rtol']:.0e} {p['seconds'] * 1e3:.0f} ms "
        f"(mescd {p['mescd']:.2f})")
    return f"{c['problem']:6} {theirs}  vs  {ours}: {'met' if c['met'] else 'NOT met'}"


def batched_rober(batch, repeat):
    """ROBER to t = 1e5 with each rate scaled by a random factor in [0.5, 2]."""
    from scipy.integrate import solve_ivp
    gen = torch.Generator().manual_seed(0)
    factors = 2.0 ** (2 * torch.rand(batch, 3, generator=gen, dtype=torch.float64) - 1)
    base = dict(k1=0.04, k2=3e7, k3=1e4)
    rates = {k: v * factors[:, i] for i, (k, v) in enumerate(base.items())}
    u0 = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64).expand(batch, 3)
    prob = pyude.ODEProblem(P.rober, u0, (0.0, 1e5), rates)
    rtol, atol = 1e-6, 1e-10
    methods = {"Rodas5P (AD)": pyude.Rodas5P(), "Rodas5P (fd)": pyude.Rodas5P(autodiff=False),
               "KenCarp4 (fd)": pyude.KenCarp4(autodiff=False)}
    pyude_s, solutions = {}, {}
    for name, method in methods.items():
        pyude_s[name], solutions[name] = best_time(
            lambda m=method: pyude.solve(prob, m, rtol=rtol, atol=atol, saveat=[1e5]), repeat)
    best = min(pyude_s, key=pyude_s.get)
    t_pyude, sol = pyude_s[best], solutions[best]

    def scipy_loop():
        out = []
        for i in range(batch):
            k1, k2, k3 = (float(rates[k][i]) for k in ("k1", "k2", "k3"))

            def f(t, y):
                return [-k1 * y[0] + k3 * y[1] * y[2],
                        k1 * y[0] - k2 * y[1] ** 2 - k3 * y[1] * y[2], k2 * y[1] ** 2]
            out.append(solve_ivp(f, (0.0, 1e5), [1.0, 0.0, 0.0], method="Radau", rtol=rtol,
                                 atol=atol).y[:, -1])
        return np.array(out)

    t_scipy, ys = best_time(scipy_loop, 1)
    rel = np.abs(sol.u[-1].numpy() - ys) / (atol / rtol + np.abs(ys))
    return dict(batch=batch, rtol=rtol, atol=atol, pyude_s=pyude_s, pyude_best=best,
                scipy_radau_loop_s=t_scipy, speedup=t_scipy / t_pyude,
                max_scaled_difference=float(rel.max()), pyude_steps=sol.stats.naccept)


def plot(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(PROBLEMS), figsize=(4.2 * len(PROBLEMS), 4))
    for ax, pname in zip(axes, PROBLEMS):
        for (lib, method) in sorted({(r["library"], r["method"]) for r in rows}):
            pts = [r for r in rows if r["problem"] == pname and r["method"] == method]
            if pts:
                ax.plot([p["mescd"] for p in pts], [p["seconds"] for p in pts],
                        "o-" if lib == "pyude" else "s--", label=f"{method} ({lib})")
        ax.set_yscale("log")
        ax.set_xlabel("mescd (correct digits)")
        ax.set_title(pname)
    axes[0].set_ylabel("wall time (s)")
    axes[-1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tols", type=float, nargs="+", default=[1e-3, 1e-4, 1e-5, 1e-6, 1e-8,
                                                                  1e-10])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--only-batched", action="store_true",
                        help="run only the batched ROBER comparison")
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    batched = batched_rober(args.batch, args.repeat)
    times = ", ".join(f"{k} {v:.2f} s" for k, v in batched["pyude_s"].items())
    print(f"\nbatched ROBER x {batched['batch']}: pyude {times}; "
          f"scipy Radau loop {batched['scipy_radau_loop_s']:.2f} s, best ({batched['pyude_best']}) "
          f"speed-up {batched['speedup']:.1f}x, max scaled difference "
          f"{batched['max_scaled_difference']:.2e}")
    if args.only_batched:
        (out / "stiff_batched.json").write_text(json.dumps(batched, indent=2))
        return
    rows = work_precision(args.tols, args.repeat)
    target = target_check(rows)
    print("\ntarget at rtol 1e-6 (equal or better error, no more time):")
    for c in target:
        print("  " + _fmt_target(c))
    (out / "stiff.json").write_text(json.dumps(dict(rows=rows, batched=batched, target=target),
                                               indent=2))
    lines = ["| problem | rtol | library | method | ms | mescd | steps | success |",
             "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['problem']} | {r['rtol']:.0e} | {r['library']} | {r['method']} | "
              f"{r['seconds'] * 1e3:.1f} | {r['mescd']:.2f} | {r['steps']} | "
              f"{'yes' if r['success'] else 'no'} |" for r in rows]
    lines += ["", "Target at rtol 1e-6 (pyude's fastest run with equal or better mescd, any "
              "tolerance, against scipy's fastest successful method):", ""]
    lines += [f"- {_fmt_target(c)}" for c in target]
    (out / "stiff.md").write_text("\n".join(lines) + "\n")
    plot(rows, out / "stiff.png")
    print(f"wrote {out / 'stiff.json'}, {out / 'stiff.md'}, {out / 'stiff.png'}")


if __name__ == "__main__":
    main()
