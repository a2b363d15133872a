"""Stiff chemistry: Robertson's reactions (ROBER) solved by every stiff method of pyude on
every installed backend, beside scipy's stiff methods, as a work-precision plot; and the
default solver switching between an explicit and a stiff method on a problem that turns
stiff and back.

1. ROBER, the Bari Test Set's version (k1 = 0.04, k2 = 3e7, k3 = 1e4, to t = 1e11), against
   the Test Set's reference. Error is the Test Set's mescd (mixed significant correct digits
   at the final time; higher is better), time is the process's CPU time (every run is on
   one thread; wall time on a shared machine measures the neighbours too), best of the
   repeats, the runs interleaved (every method once, then every method again).
   atol = 1e-4 rtol for everyone. Each peer is run as its users run it: pyude with its
   Jacobian by automatic differentiation, no Jacobian given; scipy's `solve_ivp` with a
   plain numpy right-hand side and its own finite-difference Jacobian. The order-2 methods
   (Rosenbrock23, TRBDF2) run at rtol >= 1e-6 only. The Julia backend runs when Julia is
   installed (`pip install pyude[julia]`).
2. Van der Pol with mu = 100 on [0, 200]: slow, stiff drifts and fast, non-stiff jumps.
   `pyude.solve(prob)` without a solver takes AutoTsit5(Rosenbrock23()), which steps with
   Tsit5 until it detects stiffness, then with Rosenbrock23, and back at the jump.

Measured on a shared 2-core machine, one torch thread. The compiled backend (`numba`, the
default's choice for this float64 model), quick mode at rtol 1e-4, best of two: every stiff
method in 0.4-1.1 ms, 0.014-0.4x the time of the fastest scipy run at least as accurate
(Radau 33 ms, LSODA 2.5 ms). The torch backend (`native`), full run (rtol 1e-4 to 1e-8, best
of 3), 3 min of wall time on the loaded machine: every method succeeds at every tolerance;
Rodas5P reaches 8.3 to 10.2 correct digits in 128 to 607 ms, KenCarp4 6.1 to 8.5 digits in
104 to 467 ms; scipy is faster at equal error there: Rodas5P takes 1.5-2.2x the time of the
fastest scipy run at least as accurate (Radau), Rodas4, KenCarp4 and Kvaerno5 2-6x; where
LSODA is accurate enough (its error stalls near 7.5 digits) the torch runs take 14-125x its
3-10 ms. Only Rodas4 and Rodas5P at rtol 1e-8 (10.2 digits) have no scipy run as accurate.
The default solver on Van der Pol: 318 steps (156 by Rosenbrock23, 5 switches), 0.34 s;
Rodas5P alone 205 steps, 0.39 s; Tsit5 alone 11008 steps, 18 s.
`--quick` (rtol 1e-4 only, one repeat; Tsit5 alone stopped at 3x the default solver's
steps, which leaves it at t = 12 of 200): 5-15 s. The test asserts that every pyude method
succeeds with at least 4.5 correct digits (measured: 5.07 to 8.28), and that the default
solver switches at least twice and takes fewer steps than 1.6x Rodas5P's.

    python examples/stiff_chemistry.py [--quick] [--out DIR]

Writes DIR/stiff_chemistry.png; DIR defaults to pyude-examples/stiff_chemistry.
"""

import argparse
import time
from pathlib import Path

import numpy as np
import torch

import pyude
from pyude.problems import rober_problem, vdpol_problem

# The Bari Test Set (Mazzia & Magherini, release 2.4): ROBER at t = 1e11, computed there with
# RADAU5 at rtol = atol = 1.1e-18 in extended precision.
ROBER_T1E11 = np.array([0.2083340149701255e-07, 0.8333360770334713e-13, 0.9999999791665050e+00])
K1, K2, K3 = 0.04, 3e7, 1e4
STIFF = {"Rosenbrock23": pyude.Rosenbrock23, "Rodas4": pyude.Rodas4,
         "Rodas5P": pyude.Rodas5P, "TRBDF2": pyude.TRBDF2, "KenCarp4": pyude.KenCarp4,
         "Kvaerno5": pyude.Kvaerno5}
ORDER_2 = {"Rosenbrock23", "TRBDF2"}
SCIPY = ("Radau", "BDF", "LSODA")


def mescd(y, rtol, atol) -> float:
    """The Test Set's mixed significant correct digits: min over components of
    -log10(|y - ref| / (atol/rtol + |ref|))."""
    err = np.abs(np.asarray(y) - ROBER_T1E11) / (atol / rtol + np.abs(ROBER_T1E11))
    return float(np.min(-np.log10(np.maximum(err, 1e-300))))


def rober_numpy(t, y):
    """ROBER as a scipy user writes it."""
    y1, y2, y3 = y
    return [-K1 * y1 + K3 * y2 * y3, K1 * y1 - K2 * y2**2 - K3 * y2 * y3, K2 * y2**2]


def runners(rtol, backends):
    """name -> a function returning (final state, success, steps), for this tolerance."""
    from scipy.integrate import solve_ivp
    prob, atol, t1 = rober_problem(tspan=(0.0, 1e11)), 1e-4 * rtol, 1e11
    out = {}
    for backend in backends:
        for name, method in STIFF.items():
            if name in ORDER_2 and rtol < 1e-6:
                continue

            def run(method=method, backend=backend):
                sol = pyude.solve(prob, method(), rtol=rtol, atol=atol, saveat=[t1],
                                  maxiters=10**6, throw=False, backend=backend)
                return sol.u[-1].numpy(), sol.success, sol.stats.naccept
            out[(f"pyude {backend}", name)] = run
    for name in SCIPY:
        def run(name=name):
            res = solve_ivp(rober_numpy, (0.0, t1), [1.0, 0.0, 0.0], method=name, rtol=rtol,
                            atol=atol)
            return res.y[:, -1], res.success, res.t.size - 1
        out[("scipy", name)] = run
    return out


def work_precision(tols, repeat, backends):
    rows = []
    for rtol in tols:
        best, results = {}, {}
        for _ in range(repeat):                    # interleaved: every method once per round
            for key, run in runners(rtol, backends).items():
                start = time.process_time()
                results[key] = run()
                best[key] = min(best.get(key, np.inf), time.process_time() - start)
        for (library, method), (y, ok, steps) in results.items():
            rows.append(dict(library=library, method=method, rtol=rtol, seconds=best[
                (library, method)], digits=mescd(y, rtol, 1e-4 * rtol), steps=int(steps),
                success=bool(ok)))
            r = rows[-1]
            print(f"rtol {rtol:.0e}  {library:13} {method:13} {1e3 * r['seconds']:8.1f} ms  "
                  f"{r['digits']:5.2f} digits  {r['steps']:5d} steps"
                  + ("" if ok else "  FAILED"), flush=True)
    return rows


def equal_error_ratios(rows):
    """Each pyude run's time over that of the fastest scipy run at least as accurate."""
    print("pyude's time / the fastest scipy run with at least as many correct digits:")
    scipy = [r for r in rows if r["library"] == "scipy" and r["success"]]
    for r in rows:
        if r["library"] == "scipy" or not r["success"]:
            continue
        peers = [q for q in scipy if q["digits"] >= r["digits"]]
        best = min(peers, key=lambda q: q["seconds"]) if peers else None
        r["ratio"] = best and r["seconds"] / best["seconds"]
        print(f"  {r['library']:13} {r['method']:13} rtol {r['rtol']:.0e} "
              f"({r['digits']:.2f} digits): "
              + (f"{r['ratio']:.3g}x scipy {best['method']} at rtol {best['rtol']:.0e}"
                 if best else "no scipy run as accurate"))


def auto_switching(quick: bool):
    prob = vdpol_problem(mu=100.0, tspan=(0.0, 200.0))
    tol = dict(rtol=1e-5, atol=1e-5)
    start = time.perf_counter()
    auto = pyude.solve(prob, **tol)                        # the default choice
    t_auto = time.perf_counter() - start
    stiff_steps = [type(m).__name__ != "Tsit5" for m in auto.methods]
    switches = int(np.sum(np.diff(np.array(stiff_steps, dtype=int)) != 0))
    others = {}
    for name, method in (("Rodas5P", pyude.Rodas5P()), ("Tsit5", pyude.Tsit5())):
        limit = 3 * auto.stats.naccept if (quick and name == "Tsit5") else 10**6
        start = time.perf_counter()
        sol = pyude.solve(prob, method, maxiters=limit, throw=False, **tol)
        others[name] = dict(steps=sol.stats.naccept, seconds=time.perf_counter() - start,
                            reached=float(sol.t[-1]), success=sol.success)
    print(f"Van der Pol mu=100 on [0, 200], rtol=atol=1e-5: default solver "
          f"{auto.stats.naccept} steps ({sum(stiff_steps)} by Rosenbrock23, {switches} "
          f"switches), {t_auto:.2f} s")
    for name, o in others.items():
        print(f"  {name} alone: {o['steps']} steps, {o['seconds']:.2f} s"
              + ("" if o["success"] else f", stopped at t = {o['reached']:.1f} (step limit)"))
    return dict(sol=auto, stiff_steps=stiff_steps, switches=switches, seconds=t_auto,
                others=others)


def main(quick: bool, out: Path) -> dict:
    torch.set_num_threads(1)     # a 3-state problem only loses time to threads
    backends = ["numba", "native"] + (["julia"] if pyude.julia.available() else [])
    if "julia" not in backends:
        print("Julia is not installed (pip install pyude[julia]): the numba and native "
              "backends only")
    tols = [1e-4] if quick else [1e-4, 1e-5, 1e-6, 1e-7, 1e-8]
    # best of two in the quick mode too: a compiled backend's first run of a solver family
    # includes loading (or compiling) its kernel
    rows = work_precision(tols, 2 if quick else 3, backends)
    equal_error_ratios(rows)
    switching = auto_switching(quick)
    _plot(rows, switching, out)
    return dict(rows=rows, switching=switching)


def _plot(rows, sw, out: Path) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install pyude[plot]); no plot")
        return
    fig, axes = plt.subplots(1, 3, figsize=(17, 4.8), gridspec_kw=dict(width_ratios=[1.3, 1, 1]))
    ax = axes[0]
    for i, (library, method) in enumerate(dict.fromkeys((r["library"], r["method"])
                                                        for r in rows)):
        pts = [r for r in rows if (r["library"], r["method"]) == (library, method)
               and r["success"]]
        scipy = library == "scipy"
        ax.plot([p["digits"] for p in pts], [p["seconds"] for p in pts],
                "s--" if scipy else "o-", color=f"C{i}", ms=5,
                label=f"{method} ({library})")
    ax.set_yscale("log")
    ax.set(xlabel="correct digits at t = 1e11 (mescd; right is more accurate)",
           ylabel="CPU time (s, one thread, best of the repeats)",
           title="ROBER to t = 1e11: work-precision (atol = 1e-4 rtol)")
    ax.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.16))
    sol = sw["sol"]
    t, u = sol.t.numpy(), sol.u.numpy()
    stiff = np.array([False] + sw["stiff_steps"])          # the method that reached each point
    ax = axes[1]
    ax.plot(t, u[:, 0], "-", color="0.7", lw=1)
    ax.plot(t[~stiff], u[~stiff, 0], "o", ms=3, label="step by Tsit5")
    ax.plot(t[stiff], u[stiff, 0], "s", ms=3, label="step by Rosenbrock23")
    ax.set(xlabel="t", ylabel="y1", title="Van der Pol mu = 100: the default solver")
    ax.legend(fontsize=8)
    ax = axes[2]
    dt = np.diff(t)
    ax.semilogy(t[1:][~stiff[1:]], dt[~stiff[1:]], "o", ms=3, label="Tsit5")
    ax.semilogy(t[1:][stiff[1:]], dt[stiff[1:]], "s", ms=3, label="Rosenbrock23")
    o = sw["others"]
    tsit5 = o["Tsit5"]["steps"] if o["Tsit5"]["success"] else \
        f"{o['Tsit5']['steps']} to t = {o['Tsit5']['reached']:.0f}"
    ax.set(xlabel="t", ylabel="step size",
           title=f"steps: default {sol.stats.naccept}, Rodas5P {o['Rodas5P']['steps']}, "
                 f"Tsit5 {tsit5}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / "stiff_chemistry.png", dpi=100)
    print(f"plot written to {out / 'stiff_chemistry.png'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="two tolerances, one repeat (the tests)")
    parser.add_argument("--out", type=Path, default=Path("pyude-examples/stiff_chemistry"))
    args = parser.parse_args()
    main(args.quick, args.out)
