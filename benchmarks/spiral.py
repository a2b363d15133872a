"""Training-step speed on the spiral neural ODE of torchdiffeq's examples/ode_demo.py.

One iteration = forward solve of a batch of 20 trajectories over 10 time points + backward
(direct backpropagation through the solver's steps), at ode_demo's tolerances
(rtol = 1e-7, atol = 1e-9), float32 as in ode_demo. Compares pyude's Tsit5 and DP5 with
torchdiffeq's dopri5 (`odeint`, the same direct backpropagation), reports time per iteration
and function evaluations (NFE) of forward and backward.

    python benchmarks/spiral.py [--iters 30] [--dtype float64]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch
from torch import nn

import pyude

TRUE_A = torch.tensor([[-0.1, 2.0], [-2.0, -0.1]])


class ODEFunc(nn.Module):
    """ode_demo's network: y' = net(y^3), 2-50-2 with tanh."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, 50), nn.Tanh(), nn.Linear(50, 2))
        self.nfe = 0

    def forward(self, t, y):          # torchdiffeq's order, state on the last axis
        self.nfe += 1
        return self.net(y**3)


def make_data(dtype):
    """ode_demo's data: y' = y^3 A from (2, 0), 1000 points on [0, 25] (solved in float64)."""
    t = torch.linspace(0.0, 25.0, 1000, dtype=torch.float64)
    a = TRUE_A.to(torch.float64)

    def spiral(u, p, tt):
        return (u.movedim(0, -1) ** 3 @ a).movedim(-1, 0)

    prob = pyude.ODEProblem(spiral, torch.tensor([[2.0, 0.0]], dtype=torch.float64), (0, 25))
    truth = pyude.solve(prob, pyude.Vern7(), saveat=t, rtol=1e-10, atol=1e-10).u
    return t.to(dtype), truth.to(dtype)  # (1000,), (1000, 1, 2)


def get_batch(t, true_y, gen, batch_time=10, batch_size=20):
    s = torch.randint(0, len(t) - batch_time, (batch_size,), generator=gen)
    return true_y[s], t[:batch_time], torch.stack([true_y[s + i] for i in range(batch_time)])


def pyude_step(func, solver, y0, bt, rtol, atol):
    def f(u, p, tt):                  # u arrives components first: (2, *batch)
        return func(tt, u.movedim(0, -1)).movedim(-1, 0)

    sol = pyude.solve(pyude.ODEProblem(f, y0, (float(bt[0]), float(bt[-1]))), solver,
                      saveat=bt, rtol=rtol, atol=atol)
    return sol.u


def torchdiffeq_step(func, y0, bt, rtol, atol):
    from torchdiffeq import odeint
    return odeint(func, y0, bt, rtol=rtol, atol=atol, method="dopri5")


def run(name, step, iters, t, true_y, seed):
    torch.manual_seed(seed)
    func = ODEFunc().to(true_y.dtype)
    opt = torch.optim.RMSprop(func.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(seed)
    times, nfe_f, nfe_b = [], [], []
    for _ in range(iters):
        y0, bt, by = get_batch(t, true_y, gen)
        start = time.perf_counter()
        opt.zero_grad()
        func.nfe = 0
        pred = step(func, y0, bt)
        nfe_f.append(func.nfe)
        loss = (pred - by).abs().mean()
        func.nfe = 0
        loss.backward()
        nfe_b.append(func.nfe)
        opt.step()
        times.append(time.perf_counter() - start)
    skip = min(3, iters - 1)          # warm-up iterations
    ms = 1e3 * sum(times[skip:]) / len(times[skip:])
    return dict(method=name, ms_per_iter=round(ms, 2), nfe_forward=sum(nfe_f) / iters,
                nfe_backward=sum(nfe_b) / iters, final_loss=float(loss.detach()))


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--iters", type=int, default=30)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--out", default="benchmarks/results/spiral.json")
    args = parser.parse_args()
    dtype = getattr(torch, args.dtype)
    torch.set_num_threads(1)
    t, true_y = make_data(dtype)
    rtol, atol = 1e-7, 1e-9
    if dtype == torch.float32:
        rtol, atol = 1e-6, 1e-8       # float32 cannot meet rtol 1e-7 (eps = 1.2e-7)
    rows = [
        run("pyude Tsit5", lambda f, y, b: pyude_step(f, pyude.Tsit5(), y, b, rtol, atol),
            args.iters, t, true_y, 0),
        run("pyude DP5", lambda f, y, b: pyude_step(f, pyude.DP5(), y, b, rtol, atol),
            args.iters, t, true_y, 0),
    ]
    try:
        rows.append(run("torchdiffeq dopri5", lambda f, y, b: torchdiffeq_step(f, y, b, rtol,
                                                                                atol),
                        args.iters, t, true_y, 0))
    except ImportError:
        print("torchdiffeq is not installed (pip install pyude[bench]); pyude only")
    print(f"spiral neural ODE, batch 20 x 10 times, rtol={rtol}, atol={atol}, {args.dtype}, "
          f"1 thread, {platform.processor() or platform.machine()}")
    print(f"{'method':20} {'ms/iter':>9} {'NFE fwd':>8} {'NFE bwd':>8}")
    for r in rows:
        print(f"{r['method']:20} {r['ms_per_iter']:9.2f} {r['nfe_forward']:8.1f} "
              f"{r['nfe_backward']:8.1f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(dict(rtol=rtol, atol=atol, dtype=args.dtype,
                                              rows=rows), indent=2))


if __name__ == "__main__":
    main()
