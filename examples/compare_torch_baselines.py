"""One neural ODE training task run by pyude, torchdiffeq and torchode side by side: the same
data, the same initial weights, the same batches, each library called as its own users call
it, at equal error; loss curves and time per iteration.

The task is torchdiffeq's ode_demo spiral (dy/dt = y**3 A, a 2-50-2 tanh network on y**3,
batches of 20 windows of 10 observations), in float64 so that the solvers' errors can be
measured well below the loss. Each library integrates with its 5th-order method with its
own step-size control and backpropagates through its steps: pyude `NeuralODE(net, Tsit5())`,
torchdiffeq `odeint(func, y0, t, method="dopri5")`, torchode `AutoDiffAdjoint(Tsit5,
IntegralController)` (not compiled). "Equal error": before training, each library's
tolerance is chosen as the loosest of rtol = 1e-3 ... 1e-10 (atol = rtol / 100) whose
forward solve from the data's y(0) over t in [0, 5] (200 observations, 20 windows' worth),
with the initial network, is within TARGET = 1e-6 of a Vern7 solution at 1e-12; the errors
at that tolerance are printed. Then every library trains with Adam (lr 1e-2), iteration by
iteration in turn (pyude's first iteration, torchdiffeq's, torchode's, pyude's second, ...),
so that a change in the machine's load hits all alike.
It runs on the CPU (a timing comparison on one thread; on a GPU the three would be measured
alike by moving the data and `Field` there). torchdiffeq and torchode are optional
(`pip install pyude[bench]`); without them the example runs pyude alone and says so.

Measured on a shared 2-core machine, one torch thread. The calibration picks rtol 1e-6 for
pyude (error 2.6e-7), 1e-8 for torchdiffeq (1.4e-7; its I controller needs the tighter
tolerance for the same error) and 1e-7 for torchode (2.0e-7). Full run, 300 iterations each,
about 1.5 min: 45 ms an iteration for pyude, 79 ms for torchdiffeq (1.74x pyude's), 91 ms
for torchode (2.02x); the three loss curves agree to 5e-8 (final loss 0.0067).
`--quick`, 20 iterations each, 5 s of CPU (30 s of wall time on the loaded machine): 38, 59
and 70 ms (1.53x and 1.81x); the test asserts that every library meets the error target and
that the loss curves agree to 1e-5 (measured 7e-9), not the times, which depend on the
machine.

    python examples/compare_torch_baselines.py [--quick] [--out DIR]

Writes DIR/compare_torch_baselines.png (loss curves; time per iteration); DIR defaults to
pyude-examples/compare_torch_baselines.
"""

import argparse
import copy
import time
from pathlib import Path

import torch
from torch import nn

import pyude

A = torch.tensor([[-0.1, 2.0], [-2.0, -0.1]], dtype=torch.float64)
TARGET = 1e-6        # the largest error of a forward solve allowed, before training
TOLERANCES = [1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9, 1e-10]


class Field(nn.Module):
    """ode_demo's network: dy/dt = net(y**3), y on the last axis."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, 50), nn.Tanh(), nn.Linear(50, 2))

    def forward(self, y):
        return self.net(y**3)


def make_data():
    def spiral(u, p, t):
        return (u.movedim(0, -1) ** 3 @ A).movedim(-1, 0)

    t = torch.linspace(0.0, 25.0, 1000, dtype=torch.float64)
    prob = pyude.ODEProblem(spiral, torch.tensor([2.0, 0.0], dtype=torch.float64), (0, 25))
    return t, pyude.solve(prob, pyude.Vern7(), saveat=t, rtol=1e-12, atol=1e-12).u


# --- each library as its users call it: (field, y0 (batch, 2), t (T,)) -> (T, batch, 2) ---

def pyude_solve(rtol):
    def solve(field, y0, t):
        return pyude.NeuralODE(field, pyude.Tsit5(), rtol=rtol, atol=rtol / 100)(y0, t)
    return solve


def torchdiffeq_solve(rtol):
    from torchdiffeq import odeint

    def solve(field, y0, t):
        return odeint(lambda tt, y: field(y), y0, t, rtol=rtol, atol=rtol / 100,
                      method="dopri5")
    return solve


def torchode_solve(rtol):
    import torchode as to

    def solve(field, y0, t):
        term = to.ODETerm(lambda tt, y: field(y))
        solver = to.AutoDiffAdjoint(to.Tsit5(term=term),
                                    to.IntegralController(atol=rtol / 100, rtol=rtol, term=term))
        sol = solver.solve(to.InitialValueProblem(y0=y0, t_eval=t.expand(len(y0), -1)))
        return sol.ys.transpose(0, 1)
    return solve


LIBRARIES = {"pyude Tsit5": (pyude_solve, None),
             "torchdiffeq dopri5": (torchdiffeq_solve, "torchdiffeq"),
             "torchode Tsit5": (torchode_solve, "torchode")}


def available():
    out = {}
    for name, (make, module) in LIBRARIES.items():
        try:
            if module:
                __import__(module)
            out[name] = make
        except ImportError:
            print(f"{module} is not installed (pip install pyude[bench]): {name} skipped")
    return out


def calibrate(make, field, y0, t):
    """The loosest tolerance whose forward solve is within TARGET of the reference."""
    with torch.no_grad():
        ref = pyude.NeuralODE(field, pyude.Vern7(), rtol=1e-12, atol=1e-12)(y0, t)
        for rtol in TOLERANCES:
            err = float((make(rtol)(field, y0, t) - ref).abs().max())
            if err <= TARGET:
                return rtol, err
    return TOLERANCES[-1], err


def main(quick: bool, out: Path, iters: int | None = None) -> dict:
    torch.set_num_threads(1)     # tensors this small only lose time to threads on a busy CPU
    torch.manual_seed(0)
    t, truth = make_data()
    libs = available()
    iters = iters or (20 if quick else 300)
    field0 = Field().double()
    gen = torch.Generator().manual_seed(0)
    batches = []
    for _ in range(iters):
        s = torch.randint(0, len(t) - 10, (20,), generator=gen)
        batches.append((truth[s], torch.stack([truth[s + k] for k in range(10)])))
    runs = {}
    for name, make in libs.items():
        rtol, err = calibrate(make, field0, truth[:1], t[:200])
        field = copy.deepcopy(field0)
        runs[name] = dict(solve=make(rtol), field=field, rtol=rtol, error=err,
                          opt=torch.optim.Adam(field.parameters(), lr=1e-2),
                          losses=[], seconds=[])
        print(f"{name:20} rtol {rtol:.0e} (atol rtol/100): largest error of the first "
              f"forward solve {err:.1e}")
    for i, (y0, target) in enumerate(batches):
        for name, r in runs.items():                  # interleaved, one iteration each
            start = time.perf_counter()
            r["opt"].zero_grad()
            loss = (r["solve"](r["field"], y0, t[:10]) - target).abs().mean()
            loss.backward()
            r["opt"].step()
            r["seconds"].append(time.perf_counter() - start)
            r["losses"].append(loss.item())
    skip = min(2, iters - 1)                          # warm-up iterations
    summary = {}
    for name, r in runs.items():
        ms = 1e3 * sum(r["seconds"][skip:]) / len(r["seconds"][skip:])
        summary[name] = dict(ms=ms, rtol=r["rtol"], error=r["error"], losses=r["losses"])
    base = summary["pyude Tsit5"]["ms"]
    print(f"{iters} iterations; time per iteration (forward + backward + Adam), after "
          f"{skip} warm-up iterations:")
    for name, s in summary.items():
        diff = max(abs(a - b) for a, b in zip(s["losses"], summary["pyude Tsit5"]["losses"]))
        print(f"  {name:20} {s['ms']:7.1f} ms  ({s['ms'] / base:.2f}x pyude)  final loss "
              f"{s['losses'][-1]:.4f}, largest loss difference from pyude's {diff:.1e}")
    _plot(summary, out)
    return summary


def _plot(summary, out: Path) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install pyude[plot]); no plot")
        return
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw=dict(width_ratios=[2, 1]))
    for i, (name, s) in enumerate(summary.items()):
        ax1.plot(range(1, len(s["losses"]) + 1), s["losses"], ["-", "--", ":"][i % 3],
                 lw=1.5, label=f"{name} (rtol {s['rtol']:.0e})")
    ax1.set_yscale("log")
    ax1.set(xlabel="iteration", ylabel="mean |prediction - data| on the batch",
            title="same data, same initial weights, same batches")
    ax1.legend(fontsize=8)
    names = list(summary)
    bars = ax2.bar(range(len(names)), [summary[n]["ms"] for n in names],
                   color=[f"C{i}" for i in range(len(names))])
    ax2.bar_label(bars, fmt="%.0f ms", fontsize=8)
    ax2.set_xticks(range(len(names)), [n.replace(" ", "\n") for n in names], fontsize=8)
    ax2.set(ylabel="ms per iteration (one thread)",
            title=f"time per iteration, at error <= {TARGET:.0e}")
    fig.suptitle("Spiral neural ODE: pyude against torchdiffeq and torchode")
    fig.tight_layout()
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / "compare_torch_baselines.png", dpi=100)
    print(f"plot written to {out / 'compare_torch_baselines.png'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="20 iterations (the tests)")
    parser.add_argument("--iters", type=int, default=None, help="override the iterations")
    parser.add_argument("--out", type=Path,
                        default=Path("pyude-examples/compare_torch_baselines"))
    args = parser.parse_args()
    main(args.quick, args.out, args.iters)
