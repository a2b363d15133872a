"""Time per training iteration (forward + backward + Adam step) against torchdiffeq and
torchode, at equal tolerances, with function evaluations reported.

1. The spiral neural ODE of torchdiffeq's examples/ode_demo.py (2-50-2 tanh on y^3; a batch of
   20 windows of 10 points), float32, rtol 1e-6, atol 1e-8.
2. The Lotka-Volterra UDE of the UDE paper (2-5-5-5-2 RBF network; x' = 1.3 x + nn1,
   y' = -1.8 y + nn2), 31 points on [0, 3], float64, rtol = atol = 1e-6.

Methods: pyude DP5 (the same method as torchdiffeq's dopri5) and Tsit5, with direct
backpropagation and with InterpolatingAdjoint; torchdiffeq dopri5 with `odeint` (direct) and
`odeint_adjoint`; torchode Tsit5 (direct). Equal tolerances do not give equal errors (the
step-size controllers differ: pyude's is OrdinaryDiffEq's PI controller, torchdiffeq's a
plain I controller), so each row also reports the first forward solve's largest error
against a Vern7 solution at 1e-12.

    python benchmarks/training.py [--iters 30]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from torch import nn

import pyude

sys.path.insert(0, str(Path(__file__).resolve().parent))
from spiral import ODEFunc, get_batch, make_data  # noqa: E402


class Counted(nn.Module):
    """f(t, y) in torchdiffeq's order, counting evaluations."""

    def __init__(self, field):
        super().__init__()
        self.field, self.nfe = field, 0

    def forward(self, t, y):
        self.nfe += 1
        return self.field(t, y)


def lv_case():
    t = torch.linspace(0.0, 3.0, 31, dtype=torch.float64)
    u0 = torch.tensor([0.44249296, 4.6280594], dtype=torch.float64)
    truth = pyude.solve(pyude.problems.lotka_volterra_problem(
        u0=u0, tspan=(0.0, 3.0), p=dict(alpha=1.3, beta=0.9, gamma=1.8, delta=0.8)),
        pyude.Vern7(), saveat=t, rtol=1e-10, atol=1e-10).u
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 5), pyude.nn.RBF(), nn.Linear(5, 5), pyude.nn.RBF(),
                        nn.Linear(5, 5), pyude.nn.RBF(), nn.Linear(5, 2)).double()

    class Field(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, tt, y):                  # y: (*batch, 2)
            m = self.net(y)
            return torch.stack([1.3 * y[..., 0] + m[..., 0], -1.8 * y[..., 1] + m[..., 1]], -1)

    return Field(), (lambda: (u0, t, truth)), 1e-6, 1e-6


def spiral_case():
    t, true_y = make_data(torch.float32)
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    func = ODEFunc()

    class Field(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = func.net

        def forward(self, tt, y):
            return self.net(y**3)

    return Field(), (lambda: get_batch(t, true_y, gen)), 1e-6, 1e-8


def step_fn(method, field, rtol, atol):
    counted = Counted(field)
    if method.startswith("pyude"):
        sensealg = pyude.InterpolatingAdjoint() if "adjoint" in method else None
        alg = getattr(pyude, method.split()[1])()

        class Model(nn.Module):
            def __init__(self):
                super().__init__()
                self.counted = counted

            def forward(self, u, p, tt):
                return self.counted(tt, u.movedim(0, -1)).movedim(-1, 0)

        model = Model()

        def run(y0, t):
            prob = pyude.ODEProblem(model, y0, (float(t[0]), float(t[-1])))
            return pyude.solve(prob, alg, saveat=t, rtol=rtol, atol=atol,
                               sensealg=sensealg).u
    elif method.startswith("torchdiffeq"):
        from torchdiffeq import odeint, odeint_adjoint
        solver = odeint_adjoint if "adjoint" in method else odeint

        def run(y0, t):
            return solver(counted, y0, t, rtol=rtol, atol=atol, method="dopri5")
    else:
        import torchode as to
        term = to.ODETerm(lambda tt, y: counted(tt, y))
        step = to.Tsit5(term=term)
        ctrl = to.IntegralController(atol=atol, rtol=rtol, term=term)
        solver = to.AutoDiffAdjoint(step, ctrl)

        def run(y0, t):
            flat = y0.reshape(-1, y0.shape[-1])
            sol = solver.solve(to.InitialValueProblem(
                y0=flat, t_eval=t.expand(flat.shape[0], -1).to(flat.dtype)))
            return sol.ys.movedim(1, 0).reshape(len(t), *y0.shape)
    return counted, run


def reference(field, y0, t):
    """The first batch's trajectory at 1e-12 (Vern7), for the error column."""
    def f(u, p, tt):                 # pyude hands f the state axis first
        return field(tt, u.movedim(0, -1)).movedim(-1, 0)
    with torch.no_grad():
        prob = pyude.ODEProblem(f, y0.double(), (float(t[0]), float(t[-1])))
        return pyude.solve(prob, pyude.Vern7(), saveat=t.double(), rtol=1e-12,
                           atol=1e-12).u


def bench(case, method, iters):
    field, batch, rtol, atol = case()
    counted, run = step_fn(method, field, rtol, atol)
    opt = torch.optim.Adam(field.parameters(), lr=1e-3)
    times, nfe_f, nfe_b, error = [], [], [], None
    for _ in range(iters):
        y0, t, target = batch()
        if error is None:
            with torch.no_grad():
                ref = reference(field.double(), y0, t)
                field.to(y0.dtype)
                error = float((run(y0, t).double() - ref).abs().max())
        start = time.perf_counter()
        opt.zero_grad()
        counted.nfe = 0
        pred = run(y0, t)
        nfe_f.append(counted.nfe)
        counted.nfe = 0
        loss = (pred - target).abs().mean()
        loss.backward()
        nfe_b.append(counted.nfe)
        opt.step()
        times.append(time.perf_counter() - start)
    warm = times[3:] if len(times) > 5 else times
    return dict(method=method, ms_per_iter=round(1e3 * sum(warm) / len(warm), 2),
                nfe_forward=sum(nfe_f) / iters, nfe_backward=sum(nfe_b) / iters,
                max_error=error)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--iters", type=int, default=30)
    args = parser.parse_args()
    torch.set_num_threads(1)
    methods = ["pyude DP5", "pyude DP5 adjoint", "pyude Tsit5", "pyude Tsit5 adjoint",
               "torchdiffeq dopri5", "torchdiffeq dopri5 adjoint", "torchode Tsit5"]
    results = {}
    for name, case in [("spiral (float32)", spiral_case), ("Lotka-Volterra UDE", lv_case)]:
        print(f"\n{name}\n{'method':28} {'ms/iter':>9} {'NFE fwd':>8} {'NFE bwd':>8} "
              f"{'max error':>10}")
        results[name] = []
        for method in methods:
            try:
                row = bench(case, method, args.iters)
            except ImportError as err:
                print(f"{method:28} skipped ({err})")
                continue
            results[name].append(row)
            print(f"{method:28} {row['ms_per_iter']:9.2f} {row['nfe_forward']:8.1f} "
                  f"{row['nfe_backward']:8.1f} {row['max_error']:10.2e}", flush=True)
    out = Path("benchmarks/results")
    out.mkdir(parents=True, exist_ok=True)
    (out / "training.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
