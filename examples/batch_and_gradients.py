"""Fit Lotka-Volterra's four rates to data from 64 initial states at once, by gradient
descent through a batched Tsit5 solve (direct backpropagation through the steps).

    python examples/batch_and_gradients.py [--iters 60]
"""

import argparse

import torch

import pyude
from pyude.problems import lotka_volterra

NAMES = ["alpha", "beta", "gamma", "delta"]


def main(iters: int) -> None:
    torch.manual_seed(0)
    true_p = torch.tensor([1.5, 1.0, 3.0, 1.0], dtype=torch.float64)
    u0 = 0.5 + torch.rand(64, 2, dtype=torch.float64)
    times = torch.linspace(0.0, 3.0, 16, dtype=torch.float64)

    def simulate(p):
        prob = pyude.ODEProblem(lotka_volterra, u0, (0.0, 3.0), dict(zip(NAMES, p)))
        return pyude.solve(prob, pyude.Tsit5(), rtol=1e-7, atol=1e-7, saveat=times).u

    data = simulate(true_p)
    log_p = torch.zeros(4, dtype=torch.float64, requires_grad=True)   # start from all ones
    opt = torch.optim.Adam([log_p], lr=0.05)
    for i in range(iters):
        opt.zero_grad()
        loss = ((simulate(log_p.exp()) - data) ** 2).mean()
        loss.backward()
        opt.step()
        if i % 20 == 0 or i == iters - 1:
            print(f"iter {i:3d}  loss {loss.item():.3e}  p = {log_p.exp().detach().numpy()}")
    print(f"true p = {true_p.numpy()}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--iters", type=int, default=60)
    main(parser.parse_args().iters)
