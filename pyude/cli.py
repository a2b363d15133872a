"""pyude: stiff and adjoint ODE solvers, UDEs and equation discovery, from the command line.

Run the UDE paper's Lotka-Volterra experiment (`pyude demo`), discover the missing terms of
your own model from your own data (`pyude discover --data obs.csv --problem mine.py:PROBLEM`),
see the solvers at work (`pyude solvers`), or check what is installed (`pyude doctor`).
`pyude COMMAND --help` lists each command's options and their defaults."""

from __future__ import annotations

import argparse
import functools
import sys
import time
import traceback
import warnings


_BAD_INPUT = (ValueError, TypeError, FileNotFoundError, ImportError)


def _show_notices(show):
    """`warnings.showwarning` that prints a compile notice as one plain line above the
    progress bars (it comes from a timer thread, so a warning's source line would be
    numba's, not the user's), and everything else as `show` does."""
    def shown(message, category, filename, lineno, file=None, line=None):
        from pyude.backends._compiled import CompileNotice
        if issubclass(category, CompileNotice):
            from tqdm import tqdm
            tqdm.write(f"pyude: {message}", file=sys.stderr)
        else:
            show(message, category, filename, lineno, file, line)
    return shown


def _discover(args: argparse.Namespace) -> int:
    from pyude import pipeline
    from pyude.backends import BackendNotice

    try:
        problem = pipeline.load_problem(args.problem)
        if args.data is not None:
            t, data, _ = pipeline.load_data(args.data, problem.state_names
                                            if str(args.data).endswith(".csv") else None)
            source = f"data from {args.data}"
        else:
            t = data = None
            noise = 0.05 if args.noise is None else args.noise
            source = f"simulated data, noise {noise:.2%}, seed {args.seed}"
        run = functools.partial(
            pipeline.run, problem, t=t, data=data, noise=args.noise, seed=args.seed,
            out=args.out, force=args.force, regression=args.regression, degree=args.degree,
            parsimony=args.parsimony, holdout=args.holdout, refit_iters=args.refit_iters,
            per_target=args.per_target, progress=not args.quiet, plots=not args.no_plots)
        print(f"pyude {args.command}: {problem.name}, {source}; UDE fit and refits "
              f"compiled where the model qualifies\n")
        with warnings.catch_warnings():       # the header above says where each stage runs
            warnings.simplefilter("ignore", BackendNotice)
            warnings.showwarning = _show_notices(warnings.showwarning)
            results = run()
    except _BAD_INPUT as err:
        print(f"pyude {args.command}: {err}", file=sys.stderr)
        return 2
    except pipeline.PipelineError as err:
        print(f"pyude {args.command}: {err}", file=sys.stderr)
        return 1
    except pipeline.InternalError as err:
        traceback.print_exception(err.__cause__ or err, file=sys.stderr)
        print(f"\npyude {args.command}: {err} (the traceback above; report in {args.out})",
              file=sys.stderr)
        return 1
    print(pipeline.summary(results))
    print(f"\nreport: {args.out}/report.md ({results['seconds']:.0f} s)")
    return 0


def _solvers(args: argparse.Namespace) -> int:
    import torch

    import pyude
    from pyude.problems import lotka_volterra_problem

    print("pyude solvers: Lotka-Volterra (1.5, 1, 3, 1) from (1, 1) to t = 10, on the "
          "compiled (numba) and torch (native) backends\n")
    reference = (1.026344767575089319, 0.909691078136041618)  # mpmath, 30 digits
    print(f"{'solver':9} {'backend':7} {'rtol':>7} {'steps':>6} {'f evals':>8} "
          f"{'max error':>10} {'time':>8}")
    prob = lotka_volterra_problem()
    for solver, tol in [(pyude.Tsit5(), 1e-6), (pyude.Tsit5(), 1e-10), (pyude.Vern7(), 1e-10),
                        (pyude.DP5(), 1e-8), (pyude.BS3(), 1e-6), (pyude.Rodas5P(), 1e-8)]:
        for backend in ("numba", "native"):
            pyude.solve(prob, solver, rtol=tol, atol=tol, saveat=[10.0], backend=backend)
            start = time.perf_counter()          # (the first call above loads the kernels)
            sol = pyude.solve(prob, solver, rtol=tol, atol=tol, saveat=[10.0],
                              backend=backend)
            elapsed = time.perf_counter() - start
            err = max(abs(sol.u[-1, i].item() - reference[i]) for i in range(2))
            print(f"{solver!r:9} {backend:7} {tol:7.0e} {sol.stats.naccept:6d} "
                  f"{sol.stats.nf:8d} {err:10.2e} {elapsed * 1e3:6.2f}ms")

    u0 = 0.5 + torch.rand(args.batch, 2, dtype=torch.float64,
                          generator=torch.Generator().manual_seed(args.seed))
    print(f"\nA batch of {args.batch} initial states in one solve:")
    for backend, how in (("numba", "each trajectory its own steps, in parallel"),
                         ("native", "one step size shared by the batch")):
        start = time.perf_counter()
        sol = pyude.solve(prob.remake(u0=u0), pyude.Tsit5(), rtol=1e-8, atol=1e-8,
                          saveat=10.0, backend=backend)
        print(f"  {backend:7} u shape {tuple(sol.u.shape)}, {sol.stats.naccept} steps "
              f"({how}), {(time.perf_counter() - start) * 1e3:.1f} ms")

    print("\nGradient of sum(u(10)) with respect to (alpha, beta, gamma, delta), by the "
          "discrete adjoint of Tsit5's steps:")
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


def _discovery_options(parser: argparse.ArgumentParser, data: bool) -> None:
    if data:
        parser.add_argument("--problem", default="lotka_volterra",
                            help="a built-in problem (lotka_volterra, cubic_friction) or "
                                 "path/to/file.py:NAME for a DiscoveryProblem of your own; it "
                                 "gives the known physics and the network's outputs")
        parser.add_argument("--data", default=None,
                            help="observations: a CSV (header: t, then the problem's state "
                                 "names) or an NPZ (arrays t and u); default: simulate the "
                                 "problem with noise")
        parser.add_argument("--holdout", type=float, default=None,
                            help="the fraction of the observations at the end kept out of "
                                 "the fit to check the discovered model (default 0.2 with "
                                 "--data, 0 for simulated data; 0 skips the check)")
    parser.add_argument("--noise", type=float, default=None,
                        help="Gaussian noise of the simulated data, as a fraction of each "
                             "state's mean (default 0.05, the UDE paper's setting; not with "
                             "--data)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the data and the fit")
    parser.add_argument("--out", default="pyude-report",
                        help="the report folder (default pyude-report); one that holds a "
                             "report already needs --force")
    parser.add_argument("--force", action="store_true",
                        help="replace the report in --out when there is one")
    parser.add_argument("--regression", default="sindy", choices=("sindy", "pysr", "operon",
                                                                   "auto"),
                        help="symbolic regression of the network's outputs (default sindy)")
    parser.add_argument("--degree", type=int, default=None,
                        help="the polynomial library's highest degree (default: the "
                             "problem's, 3 unless it sets another)")
    parser.add_argument("--parsimony", type=float, default=6.0,
                        help="the BIC margin an extra term must win by (default 6, "
                             "'strong' evidence; 0 takes the lowest BIC)")
    parser.add_argument("--per-target", type=int, default=4,
                        help="candidate structures per network output in the search "
                             "(default 4, plus every single library term)")
    parser.add_argument("--refit-iters", type=int, default=50,
                        help="LBFGS iterations of each refit through the ODE (default 50)")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} trajectories: give at least 1")
    return value


def main(argv: list[str] | None = None) -> int:
    from pyude import __version__
    parser = argparse.ArgumentParser(prog="pyude", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"pyude {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser(
        "demo", help="the UDE paper's Lotka-Volterra experiment: noisy data -> UDE fit -> "
                     "sparse regression -> refit -> extrapolation")
    _discovery_options(demo, data=False)
    demo.set_defaults(run=_discover, problem="lotka_volterra", data=None, holdout=None)
    discover = sub.add_parser(
        "discover", help="the discovery pipeline on a built-in problem or on your own data "
                         "(CSV or NPZ), writing a report folder")
    _discovery_options(discover, data=True)
    discover.set_defaults(run=_discover)
    solvers = sub.add_parser("solvers", help="solve and print a small showcase of the "
                                             "solvers on the compiled and torch backends")
    solvers.add_argument("--batch", type=_positive_int, default=256,
                         help="trajectories in the batched solve (default 256)")
    solvers.add_argument("--seed", type=int, default=0,
                         help="seeds the batch's initial states (default 0)")
    solvers.set_defaults(run=_solvers)
    doctor = sub.add_parser("doctor", help="report Python, torch, Julia and the optional "
                                           "packages, with what to do about missing ones")
    doctor.set_defaults(run=_doctor)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except Exception:
        traceback.print_exc()
        print(f"\npyude {args.command}: an internal error (the traceback above); please "
              f"report it", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
