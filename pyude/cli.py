"""The `pyude` command."""

from __future__ import annotations

import argparse
import sys
import time


def _demo(args: argparse.Namespace) -> int:
    import torch

    import pyude
    from pyude.problems import lotka_volterra_problem

    print("pyude demo: Lotka-Volterra (1.5, 1, 3, 1) from (1, 1) to t = 10, native backend\n")
    reference = (1.026344767575089319, 0.909691078136041618)  # mpmath, 30 digits
    print(f"{'solver':8} {'rtol':>7} {'steps':>6} {'f evals':>8} {'max error':>10} {'time':>8}")
    prob = lotka_volterra_problem()
    for solver, tol in [(pyude.Tsit5(), 1e-6), (pyude.Tsit5(), 1e-10), (pyude.Vern7(), 1e-10),
                        (pyude.DP5(), 1e-8), (pyude.BS3(), 1e-6)]:
        start = time.perf_counter()
        sol = pyude.solve(prob, solver, rtol=tol, atol=tol, saveat=[10.0])
        elapsed = time.perf_counter() - start
        err = max(abs(sol.u[-1, i].item() - reference[i]) for i in range(2))
        print(f"{solver!r:8} {tol:7.0e} {sol.stats.naccept:6d} {sol.stats.nf:8d} {err:10.2e} "
              f"{elapsed * 1e3:6.1f}ms")

    print(f"\nA batch of {args.batch} initial states in one solve (one shared step size):")
    u0 = 0.5 + torch.rand(args.batch, 2, dtype=torch.float64,
                          generator=torch.Generator().manual_seed(args.seed))
    start = time.perf_counter()
    sol = pyude.solve(prob.remake(u0=u0), pyude.Tsit5(), rtol=1e-8, atol=1e-8, saveat=10.0)
    print(f"  u shape {tuple(sol.u.shape)}, {sol.stats.naccept} steps, "
          f"{(time.perf_counter() - start) * 1e3:.1f} ms")

    print("\nGradient of sum(u(10)) with respect to (alpha, beta, gamma, delta), by "
          "backpropagation through Tsit5:")
    p = torch.tensor([1.5, 1.0, 3.0, 1.0], dtype=torch.float64, requires_grad=True)
    names = ["alpha", "beta", "gamma", "delta"]
    sol = pyude.solve(prob.remake(p=dict(zip(names, p))), pyude.Tsit5(), rtol=1e-10,
                      atol=1e-10, saveat=[10.0])
    sol.u[-1].sum().backward()
    print("  " + ", ".join(f"d/d{n} = {g:+.6f}" for n, g in zip(names, p.grad.tolist())))
    return 0


def _doctor(args: argparse.Namespace) -> int:
    from pyude.julia import doctor_report

    rows = doctor_report()
    width = max(len(name) for name, _, _ in rows)
    for name, state, advice in rows:
        print(f"{name:{width}}  {state}" + (f"\n{'':{width}}  -> {advice}" if advice else ""))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pyude", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="solve and print a small showcase on the native backend")
    demo.add_argument("--batch", type=int, default=256, help="trajectories in the batched solve")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(run=_demo)
    doctor = sub.add_parser("doctor", help="report Python, torch, Julia and the optional "
                                           "packages, with what to do about missing ones")
    doctor.set_defaults(run=_doctor)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
