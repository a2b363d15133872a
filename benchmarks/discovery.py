"""Structure recovery of the Lotka-Volterra discovery pipeline over seeds and noise levels.

Success is the UDE paper's criterion: the discovered model has exactly the two interaction
terms c*x*y (and the known physics alpha x, -delta y untouched). Coefficients are compared
with the truth (-0.9, 0.8) and with an oracle refit of the true form to the same data.

    python benchmarks/discovery.py [--seeds 10] [--noise 0.005 0.05]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from pyude import pipeline


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--noise", type=float, nargs="+", default=[0.005, 0.05])
    args = parser.parse_args()
    rows = []
    for noise in args.noise:
        hits = 0
        for seed in range(args.seeds):
            start = time.perf_counter()
            r = pipeline.run("lotka_volterra", noise=noise, seed=seed, progress=False,
                             plots=False, out=f"benchmarks/results/discovery/{noise}-{seed}")
            ok = r["recovered"]
            hits += ok
            row = dict(noise=noise, seed=seed, recovered=ok, seconds=time.perf_counter() - start,
                       equations=r["discovered"]["equations"],
                       coefficients=r["discovered"]["coefficients"],
                       oracle=r["oracle"]["coefficients"], extrapolation=r["extrapolation"])
            rows.append(row)
            print(f"noise {noise:.3f} seed {seed}: {'ok ' if ok else 'NO '} "
                  f"{row['equations']}  oracle {row['oracle']}  extrapolation "
                  f"{row['extrapolation']}  {row['seconds']:.0f}s", flush=True)
        print(f"noise {noise:.3f}: structure recovered in {hits}/{args.seeds}")
    Path("benchmarks/results").mkdir(parents=True, exist_ok=True)
    Path("benchmarks/results/discovery.json").write_text(json.dumps(rows, indent=2,
                                                                    default=str))


if __name__ == "__main__":
    main()
