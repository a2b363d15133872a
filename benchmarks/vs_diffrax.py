"""diffrax's side of `benchmarks/stiff.py`, run as diffrax's users run it: float64, the
model's arithmetic on jax arrays as the vector field, `diffeqsolve` with a stiff solver
(Kvaerno3/4/5), `PIDController(rtol, atol)` with its default (I) coefficients and, as
"PI", with `pcoeff=0.3, icoeff=0.3` (the controller diffrax's documentation suggests for
mildly stiff problems), `SaveAt(t1=True)`, wrapped in `jax.jit`
(`jax.jit(jax.vmap(...))` for a batch of parameter sets), timed after
`jax.block_until_ready`. The tolerances are traced arguments, so one compile serves every
rtol; the compile (first call) is timed on its own and reported apart from the solves.

Imported by `benchmarks/stiff.py`; run on its own it prints diffrax's rows for one problem:

    python benchmarks/vs_diffrax.py [--problem HIRES] [--rtols 1e-4 1e-6 1e-8]
"""

from __future__ import annotations

import argparse
import os
import time
from types import SimpleNamespace

import numpy as np

os.environ.setdefault("JAX_PLATFORMS", "cpu")

SOLVERS = ("Kvaerno5", "Kvaerno4", "Kvaerno3", "Kvaerno5 PI", "Kvaerno4 PI")
PI = {"pcoeff": 0.3, "icoeff": 0.3}
MAX_STEPS = 100_000


def available() -> str | None:
    """None when jax and diffrax import, else the reason they do not."""
    try:
        import diffrax  # noqa: F401
        import jax  # noqa: F401
    except ImportError as err:
        return f"diffrax not installed ({err}); pip install jax diffrax"
    return None


def _setup():
    import jax
    jax.config.update("jax_enable_x64", True)
    import diffrax
    import jax.numpy as jnp
    return jax, jnp, diffrax


def _solve_fn(model, method, t1):
    """solve(y0, params, rtol, atol) -> (y(t1), success, accepted steps), not yet jitted."""
    _, jnp, diffrax = _setup()
    term = diffrax.ODETerm(lambda t, y, p: jnp.stack(model(y, SimpleNamespace(**p), t)))
    name, _, variant = method.partition(" ")
    solver = getattr(diffrax, name)()
    coefficients = PI if variant == "PI" else {}

    def solve(y0, params, rtol, atol):
        sol = diffrax.diffeqsolve(
            term, solver, 0.0, t1, None, y0, args=params, saveat=diffrax.SaveAt(t1=True),
            stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol, **coefficients),
            max_steps=MAX_STEPS, throw=False)
        return (sol.ys[-1], sol.result == diffrax.RESULTS.successful,
                sol.stats["num_accepted_steps"])
    return solve


def single(model, params: dict, u0, t1: float, method: str):
    """(compile seconds, run(rtol, atol) -> (y(t1) as numpy, success)) for one problem."""
    jax, jnp, _ = _setup()
    fn = jax.jit(_solve_fn(model, method, t1))
    y0 = jnp.asarray(np.asarray(u0, dtype=np.float64))
    p = {k: jnp.float64(float(v)) for k, v in params.items()}

    def run(rtol, atol):
        y, ok, _ = jax.block_until_ready(fn(y0, p, jnp.float64(rtol), jnp.float64(atol)))
        return np.asarray(y), bool(ok)
    start = time.perf_counter()
    run(1e-6, 1e-6)
    return time.perf_counter() - start, run


def batch(model, params: dict, u0, t1: float, method: str):
    """The same for a batch: `params` maps names to arrays of one value per trajectory;
    `jax.jit(jax.vmap(solve))`, every member with its own step sizes (diffrax's vmap of its
    while loop runs until the last member ends). run(rtol, atol) -> (Y (B, n), all ok)."""
    jax, jnp, _ = _setup()
    fn = jax.jit(jax.vmap(_solve_fn(model, method, t1), in_axes=(None, 0, None, None)))
    y0 = jnp.asarray(np.asarray(u0, dtype=np.float64))
    p = {k: jnp.asarray(np.asarray(v, dtype=np.float64)) for k, v in params.items()}

    def run(rtol, atol):
        y, ok, _ = jax.block_until_ready(fn(y0, p, jnp.float64(rtol), jnp.float64(atol)))
        return np.asarray(y), bool(np.all(ok))
    start = time.perf_counter()
    run(1e-6, 1e-10)
    return time.perf_counter() - start, run


def main() -> None:
    import sys
    from pathlib import Path
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problem", default="HIRES")
    parser.add_argument("--rtols", type=float, nargs="+", default=[1e-4, 1e-6, 1e-8])
    parser.add_argument("--methods", nargs="+", default=["Kvaerno5"], choices=SOLVERS)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from stiff import PROBLEMS, mescd
    make, model, ref, ratio = PROBLEMS[args.problem]
    problem = make()
    for method in args.methods:
        compile_s, run = single(model, dict(problem.p.items()), problem.u0.numpy(),
                                problem.tspan[1], method)
        print(f"{args.problem} diffrax {method}: compile {compile_s:.1f} s")
        for rtol in args.rtols:
            start = time.perf_counter()
            y, ok = run(rtol, rtol * ratio)
            ms = 1e3 * (time.perf_counter() - start)
            print(f"  rtol {rtol:.0e}: {ms:8.2f} ms  mescd {mescd(y, ref, rtol, rtol * ratio):5.2f}"
                  + ("" if ok else "  FAILED"))


if __name__ == "__main__":
    main()
