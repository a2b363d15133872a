"""Peak memory of a gradient against the number of solver steps, per sensitivity algorithm.

A neural ODE (2-64-2 tanh network) on a batch of 512 trajectories is solved with Tsit5 at a
fixed step over longer and longer spans (so the step count grows), and the loss on 10 saved
times is backpropagated. Each configuration runs in a fresh process; the figure is the
growth of the process's peak resident memory over a run that only builds the model.

    python benchmarks/memory.py
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path

ALGORITHMS = ["DirectAdjoint()", "DirectAdjoint(checkpointing=True)",
              "InterpolatingAdjoint()", "QuadratureAdjoint()"]
STEPS = [100, 200, 400, 800]

CHILD = """
import resource, sys, torch
from torch import nn
import pyude
algorithm, steps, measure = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
torch.manual_seed(0)
net = nn.Sequential(nn.Linear(2, 64), nn.Tanh(), nn.Linear(64, 2)).double()
u0 = torch.randn(512, 2, dtype=torch.float64)
t = torch.linspace(0.0, steps * 0.01, 10, dtype=torch.float64)
model = pyude.NeuralODE(net, pyude.Tsit5(), sensealg=eval("pyude." + algorithm), dt=0.01,
                        adaptive=False)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if measure:
    model(u0, t).square().mean().backward()
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base)
"""


def run(algorithm: str, steps: int) -> float:
    out = subprocess.run([sys.executable, "-c", CHILD, algorithm, str(steps), "1"],
                         capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1]) / 1024  # ru_maxrss is in KiB on Linux


def main():
    rows = []
    print(f"{'algorithm':36}" + "".join(f"{s:>10d}" for s in STEPS) + "   (MiB over baseline)")
    for algorithm in ALGORITHMS:
        mib = [run(algorithm, s) for s in STEPS]
        rows.append(dict(algorithm=algorithm, steps=STEPS, peak_mib=mib))
        print(f"{algorithm:36}" + "".join(f"{m:10.1f}" for m in mib), flush=True)
    out = Path("benchmarks/results")
    out.mkdir(parents=True, exist_ok=True)
    (out / "memory.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    del resource
    main()
