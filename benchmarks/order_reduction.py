"""Order reduction of the stiff methods on Prothero-Robinson.

y' = lambda (y - phi(t)) + phi'(t), y(0) = phi(0), phi(t) = sin(t), exact solution phi. For
lambda << 0 and dt |lambda| >> 1, Runge-Kutta and Rosenbrock methods lose order down to their
stage order (order reduction). Prints the observed order (mean log2 error ratio over halving
fixed steps) at lambda = -1 (non-stiff) and lambda = -1e6 (stiff).

    python benchmarks/order_reduction.py
"""

from __future__ import annotations

import math

import numpy as np

import pyude
from pyude import ops

METHODS = [pyude.Rosenbrock23(), pyude.Rodas4(), pyude.Rodas5P(), pyude.TRBDF2(),
           pyude.KenCarp4(), pyude.Kvaerno5()]


def prothero_robinson(u, p, t):
    (y,) = u
    return [p.lam * (y - ops.sin(t)) + ops.cos(t)]


def observed_orders(solver, lam, ks=range(3, 8), t1=1.0):
    prob = pyude.ODEProblem(prothero_robinson, [0.0], (0.0, t1), dict(lam=lam))
    errors = []
    for k in ks:
        sol = pyude.solve(prob, solver, dt=2.0**-k, adaptive=False, rtol=1e-13, atol=1e-13)
        errors.append(abs(sol.u[-1, 0].item() - math.sin(t1)))
    errors = np.array(errors)
    return errors, np.log2(errors[:-1] / errors[1:])


def main():
    print(f"{'method':14} {'nominal':>7} {'lambda=-1':>10} {'lambda=-1e6':>12}   errors at "
          f"lambda=-1e6 (dt = 1/8 ... 1/128)")
    for solver in METHODS:
        _, mild = observed_orders(solver, -1.0)
        errs, stiff = observed_orders(solver, -1e6)
        print(f"{solver!r:14} {solver.order:7d} {mild.mean():10.2f} {stiff.mean():12.2f}   "
              + " ".join(f"{e:.1e}" for e in errs))


if __name__ == "__main__":
    import argparse
    argparse.ArgumentParser(description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    main()
