"""Peak memory of a gradient against the number of solver steps, per sensitivity algorithm.

A neural ODE (2-64-2 tanh network) on a batch of 512 trajectories is solved with Tsit5 at a
fixed step over longer and longer spans (so the step count grows), and the loss on 10 saved
times is backpropagated. Each configuration runs in a fresh process; the figure is the
memory the forward pass saves for backward (exact, from torch's saved-tensor hooks) and the
growth of the process's peak resident memory (coarse: it includes the backward pass and the
allocator's caching), measured twice: with glibc's malloc as it comes, and with its mmap
threshold fixed at 64 KiB (MALLOC_MMAP_THRESHOLD_=65536). glibc raises the threshold as large
blocks are freed, after which the adjoints' many short-lived 256 KiB temporaries come from a
heap that fragments and never shrinks: the first figure then grows with the step count
although no tensor is kept (InterpolatingAdjoint at 800 steps: about 1.2 GiB against 63 MiB
with the threshold fixed). Users who meet this can set the variable or run with jemalloc.

    python benchmarks/memory.py
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

ALGORITHMS = ["DirectAdjoint()", "DirectAdjoint(checkpointing=True)",
              "InterpolatingAdjoint()", "QuadratureAdjoint()", "GaussAdjoint()"]
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
saved = {}
def pack(x):
    saved[(x.data_ptr(), x.numel())] = x.numel() * x.element_size()
    return x
if measure:
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda x: x):
        y = model(u0, t)
    y.square().mean().backward()
print(sum(saved.values()) / 2**20, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base)
"""


def run(algorithm: str, steps: int, fixed_threshold: bool = False) -> tuple[float, float]:
    """(MiB the forward pass saves for backward, growth of peak RSS in MiB)."""
    env = dict(os.environ)
    if fixed_threshold:
        env["MALLOC_MMAP_THRESHOLD_"] = "65536"
    out = subprocess.run([sys.executable, "-c", CHILD, algorithm, str(steps), "1"],
                         capture_output=True, text=True, check=True, env=env)
    graph, rss = out.stdout.strip().splitlines()[-1].split()
    return float(graph), int(rss) / 1024  # ru_maxrss is in KiB on Linux


def main():
    rows = []
    print(f"{'algorithm':36}" + "".join(f"{s:>24d}" for s in STEPS)
          + "   (MiB saved for backward / peak RSS growth / the same, mmap threshold fixed)")
    for algorithm in ALGORITHMS:
        mib = [run(algorithm, s) for s in STEPS]
        fixed = [run(algorithm, s, fixed_threshold=True)[1] for s in STEPS]
        rows.append(dict(algorithm=algorithm, steps=STEPS, saved_mib=[m[0] for m in mib],
                         peak_rss_mib=[m[1] for m in mib], peak_rss_mib_fixed_threshold=fixed))
        print(f"{algorithm:36}" + "".join(f"{g:7.1f} /{r:7.1f} /{x:7.1f}"
                                          for (g, r), x in zip(mib, fixed)), flush=True)
    out = Path("benchmarks/results")
    out.mkdir(parents=True, exist_ok=True)
    (out / "memory.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    import argparse
    argparse.ArgumentParser(description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    del resource
    main()
