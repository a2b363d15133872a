"""Time per training iteration (loss, gradient and Adam step) of the Lotka-Volterra UDE on the
numba backend against torchdiffeq's `odeint` as its users run it, interleaved in one run.

The case is `benchmarks/training.py`'s: the UDE paper's 2-5-5-5-2 RBF network in
x' = 1.3 x + nn1, y' = -1.8 y + nn2, 31 points on [0, 3], float64, rtol = atol = 1e-6, loss
mean |pred - target| against a Vern7 solution of the true Lotka-Volterra system, Adam at
lr 1e-3 (torch's fused Adam for every method). Each method trains its own copy of the same
initial network. Rows:

- numba Tsit5 / DP5: `solve_with_gradient` (compiled forward, discrete adjoint of the
  accepted steps), through the whole front (problem, options, Solution) every iteration;
- numba Tsit5 (prepared): the same solve with the problem's arrays packed once
  (`prepare`), as a training loop that keeps its options would call it;
- pyude.UDE Tsit5 (default: auto): the user's path, `loss = f(ude(u0, t))` with the module's
  default backend (compiled here), the whole front every iteration;
- torchdiffeq dopri5: `odeint` (backpropagation through its steps), `torch.set_num_threads(1)`;
- pyude Tsit5 (native): the torch backend with DirectAdjoint, for scale.

The methods run in turn, one iteration each per round (the order rotated every round), so
machine load hits all alike; then each method runs a block of iterations alone. The
table gives the median time per iteration and each row's ratio to torchdiffeq.

A second table runs the spiral neural ODE of torchdiffeq's ode_demo (2-50-2 tanh on y^3,
batches of 20 windows of 10 points, rtol 1e-6, atol 1e-8): numba solves each window as its
own trajectory (float64, one after another), torchdiffeq the whole batch at once with shared
steps (float32 as ode_demo, and float64).

    python benchmarks/numba_training.py [--rounds 40]
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

import pyude
from pyude._options import build_options
from pyude.backends.numba._gradient import prepare, solve_with_gradient

sys.path.insert(0, str(Path(__file__).resolve().parent))

RTOL = ATOL = 1e-6


def adam(params):
    """Every method's optimiser: Adam at lr 1e-3, torch's fused implementation (one kernel
    for all tensors; about 50 us a step here against 150 us for the default per-tensor
    loop, which would otherwise be a fifth of a compiled iteration)."""
    return torch.optim.Adam(params, lr=1e-3, fused=True)


def lv_data():
    t = torch.linspace(0.0, 3.0, 31, dtype=torch.float64)
    u0 = torch.tensor([0.44249296, 4.6280594], dtype=torch.float64)
    truth = pyude.solve(pyude.problems.lotka_volterra_problem(
        u0=u0, tspan=(0.0, 3.0), p={"alpha": 1.3, "beta": 0.9, "gamma": 1.8, "delta": 0.8}),
        pyude.Vern7(), saveat=t, rtol=1e-10, atol=1e-10).u
    return u0, t, truth


def lv_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(2, 5), pyude.nn.RBF(), nn.Linear(5, 5), pyude.nn.RBF(),
                         nn.Linear(5, 5), pyude.nn.RBF(), nn.Linear(5, 2)).double()


def ude_model(u, p, t, nn):
    m = nn(u)
    return [1.3 * u[0] + m[0], -1.8 * u[1] + m[1]]


def numba_step(solver, u0, t, truth, prepared=False):
    ude = pyude.UDE(ude_model, lv_net())
    opt = adam(ude.parameters())
    times = t.tolist()
    prob = pyude.ODEProblem(ude.field, u0, (0.0, 3.0))
    opts = build_options(prob, solver, saveat=times, rtol=RTOL, atol=ATOL, maxiters=100_000)
    solve = prepare(prob, solver, opts) if prepared else None

    def step():
        opt.zero_grad()
        if prepared:
            pred = solve(u0)
        else:
            p = pyude.ODEProblem(ude.field, u0, (0.0, 3.0))
            o = build_options(p, solver, saveat=times, rtol=RTOL, atol=ATOL, maxiters=100_000)
            pred = solve_with_gradient(p, solver, o).u
        loss = (pred - truth).abs().mean()
        loss.backward()
        opt.step()
        return loss.item()
    return step


def module_step(u0, t, truth, backend="native"):
    ude = pyude.UDE(ude_model, lv_net(), solver=pyude.Tsit5(), rtol=RTOL, atol=ATOL,
                    backend=backend)
    opt = adam(ude.parameters())

    def step():
        opt.zero_grad()
        loss = (ude(u0, t) - truth).abs().mean()
        loss.backward()
        opt.step()
        return loss.item()
    return step


def torchdiffeq_step(u0, t, truth):
    from torchdiffeq import odeint
    net = lv_net()

    class Field(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, tt, y):
            m = self.net(y)
            return torch.stack([1.3 * y[..., 0] + m[..., 0], -1.8 * y[..., 1] + m[..., 1]], -1)

    field = Field()
    opt = adam(field.parameters())

    def step():
        opt.zero_grad()
        pred = odeint(field, u0, t, rtol=RTOL, atol=ATOL, method="dopri5")
        loss = (pred - truth).abs().mean()
        loss.backward()
        opt.step()
        return loss.item()
    return step


def spiral_model(u, p, t, nn):
    return nn([u[0] ** 3, u[1] ** 3])


def spiral_steps(dtype_td):
    """The spiral neural ODE of torchdiffeq's ode_demo (`benchmarks/training.py`'s case 1):
    2-50-2 tanh on y^3, batches of 20 windows of 10 points, rtol 1e-6, atol 1e-8. numba
    computes in float64; torchdiffeq runs in `dtype_td` (float32 as ode_demo)."""
    from spiral import ODEFunc, get_batch, make_data
    t, true_y = make_data(torch.float64)
    torch.manual_seed(0)
    func = ODEFunc()
    steps = {}

    # numba: a UDE whose network reads y^3; the batch's windows share their times
    ude = pyude.UDE(spiral_model, copy.deepcopy(func.net).double())
    opt = adam(ude.parameters())
    gen = torch.Generator().manual_seed(0)
    solver = pyude.Tsit5()

    def numba():
        y0, bt, by = get_batch(t, true_y, gen)
        opt.zero_grad()
        prob = pyude.ODEProblem(ude.field, y0, (float(bt[0]), float(bt[-1])))
        o = build_options(prob, solver, saveat=bt.tolist(), rtol=1e-6, atol=1e-8, maxiters=100_000)
        loss = (solve_with_gradient(prob, solver, o).u - by).abs().mean()
        loss.backward()
        opt.step()
        return loss.item()
    steps["numba Tsit5 (spiral, float64)"] = numba

    from torchdiffeq import odeint
    for dtype in dtype_td:
        f = copy.deepcopy(func).to(dtype)
        opt_td = adam(f.parameters())
        gen_td = torch.Generator().manual_seed(0)
        t_td, y_td = t.to(dtype), true_y.to(dtype)

        def td(f=f, opt_td=opt_td, gen_td=gen_td, t_td=t_td, y_td=y_td):
            y0, bt, by = get_batch(t_td, y_td, gen_td)
            opt_td.zero_grad()
            loss = (odeint(f, y0, bt, rtol=1e-6, atol=1e-8, method="dopri5") - by).abs().mean()
            loss.backward()
            opt_td.step()
            return loss.item()
        steps[f"torchdiffeq dopri5 (spiral, {str(dtype).split('.')[-1]})"] = td
    return steps


def table(title: str, methods: dict, base: str, rounds: int) -> list[dict]:
    first = {}
    for name, step in methods.items():            # compile and warm up
        start = time.perf_counter()
        first[name] = (step(), time.perf_counter() - start)
        for _ in range(3):
            step()
    times = {name: [] for name in methods}
    losses = {name: None for name in methods}
    names = list(methods)
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:   # rotated each round
            start = time.perf_counter()
            losses[name] = methods[name]()
            times[name].append(time.perf_counter() - start)
    # then each method alone, a block of iterations in a row (its caches stay warm)
    blocks = {name: [] for name in methods}
    for name in names:
        for _ in range(rounds):
            start = time.perf_counter()
            methods[name]()
            blocks[name].append(time.perf_counter() - start)
    print(f"\n{title}: {rounds} interleaved rounds, then {rounds} iterations of each alone; "
          f"ratios against {base}")
    print(f"{'method':34} {'interleaved ms':>15} {'ratio':>7} {'alone ms':>9} {'ratio':>7} "
          f"{'first loss':>11} {'first call s':>13}")
    rows = []
    for name in methods:
        med, alone = statistics.median(times[name]), statistics.median(blocks[name])
        ratio = statistics.median(times[base]) / med
        ratio_alone = statistics.median(blocks[base]) / alone
        print(f"{name:34} {1e3 * med:15.3f} {ratio:6.1f}x {1e3 * alone:9.3f} "
              f"{ratio_alone:6.1f}x {first[name][0]:11.6f} {first[name][1]:13.2f}")
        rows.append({"method": name, "interleaved_median_ms": 1e3 * med,
                         "interleaved_speedup": ratio, "alone_median_ms": 1e3 * alone,
                         "alone_speedup": ratio_alone, "first_loss": first[name][0],
                         "first_call_s": first[name][1], "last_loss": losses[name]})
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    torch.set_num_threads(1)
    u0, t, truth = lv_data()
    methods = {
        "numba Tsit5": numba_step(pyude.Tsit5(), u0, t, truth),
        "numba DP5": numba_step(pyude.DP5(), u0, t, truth),
        "numba Tsit5 (prepared)": numba_step(pyude.Tsit5(), u0, t, truth, prepared=True),
        "pyude.UDE Tsit5 (default: auto)": module_step(u0, t, truth, backend="auto"),
        "pyude Tsit5 (native)": module_step(u0, t, truth),
        "torchdiffeq dopri5": torchdiffeq_step(u0, t, truth),
    }
    results = {"lotka_volterra_ude": table(
        f"Lotka-Volterra UDE, loss + gradient + Adam step, rtol = atol = {RTOL}", methods,
        "torchdiffeq dopri5", args.rounds)}
    results["spiral"] = table(
        "Spiral neural ODE (batch of 20 windows), loss + gradient + Adam step",
        spiral_steps([torch.float32, torch.float64]), "torchdiffeq dopri5 (spiral, float32)",
        max(10, args.rounds // 4))
    out = Path("benchmarks/results")
    out.mkdir(parents=True, exist_ok=True)
    (out / "numba_training.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
