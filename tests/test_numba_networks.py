"""Networks in compiled models: the generic MLP evaluator and its VJP against torch, a UDE's
weight gradients through a numba solve against torch autograd, the same loss trajectory
for a few Adam steps on both backends, and the layers outside the compiled subset."""

import numpy as np
import pytest
import torch
from torch import nn

import pyude
from pyude._options import build_options
from pyude.backends.numba._grad_model import compiled_network_reason
from pyude.backends.numba._gradient import solve_with_gradient
from pyude.backends.numba._network import (
    NetworkNotCompilable,
    layer_spec,
    lux_flat,
    mlp_forward,
    mlp_jacobian,
    mlp_vjp,
    n_activations,
)

ACTIVATIONS = [pyude.nn.RBF(), nn.Tanh(), nn.ReLU(), nn.Sigmoid(), nn.Softplus(), nn.GELU(),
               nn.GELU(approximate="tanh"), nn.Identity()]
U0 = (0.44249296, 4.6280594)
TIMES = np.linspace(0.0, 3.0, 31).tolist()


def lv_ude(u, p, t, nn):
    m = nn(u)
    return [p.alpha * u[0] + m[0], -p.gamma * u[1] + m[1]]


def network(act, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, 5), act, nn.Linear(5, 5), nn.Tanh(),
                         nn.Linear(5, 2)).double()


@pytest.mark.parametrize("act", ACTIVATIONS, ids=repr)
def test_mlp_and_its_vjp_and_jacobian_equal_torch(act):
    net = nn.Sequential(nn.Linear(3, 4), act, nn.Linear(4, 2)).double()
    spec = layer_spec(net)
    w = lux_flat(net).detach().numpy()
    offset = 3
    p = np.concatenate([np.ones(offset), w])
    x = torch.tensor([0.3, -1.2, 0.8], dtype=torch.float64, requires_grad=True)
    y = net(x)
    pre, post = np.empty(n_activations(spec)), np.empty(n_activations(spec))
    mlp_forward(spec, p, offset, x.detach().numpy(), pre, post)
    np.testing.assert_allclose(post[-2:], y.detach().numpy(), rtol=1e-14, atol=1e-15)
    gy = np.array([0.7, -1.1])
    gx, gw = np.empty(3), np.zeros_like(p)
    mlp_vjp(spec, p, offset, x.detach().numpy(), pre, post, gy, gx, gw, np.empty(8))
    grads = torch.autograd.grad(y, [x, *net.parameters()], torch.from_numpy(gy))
    np.testing.assert_allclose(gx, grads[0].numpy(), rtol=1e-13, atol=1e-15)
    flat = torch.cat([grads[1].t().reshape(-1), grads[2], grads[3].t().reshape(-1),
                      grads[4]]).numpy()
    np.testing.assert_allclose(gw[offset:], flat, rtol=1e-13, atol=1e-15)
    assert not gw[:offset].any()
    Jn = np.empty((2, 3))
    mlp_jacobian(spec, p, offset, x.detach().numpy(), pre, post, Jn)
    J = torch.autograd.functional.jacobian(net, x.detach())
    np.testing.assert_allclose(Jn, J.numpy(), rtol=1e-13, atol=1e-15)


def solve_numba(prob, solver, **kw):
    opts = build_options(prob, solver, saveat=kw.get("saveat"), dt=kw.get("dt"),
                         rtol=kw.get("rtol", 1e-6), atol=kw.get("atol", 1e-6), maxiters=100_000,
                         adaptive=kw.get("adaptive"))
    return solve_with_gradient(prob, solver, opts)


def weight_grads(ude, solve, **kw):
    prob = pyude.ODEProblem(ude.field, torch.tensor(U0, dtype=torch.float64), (0.0, 3.0))
    sol = solve(prob, pyude.Tsit5(), saveat=TIMES, **kw)
    loss = (sol.u ** 2).sum()
    return loss.item(), torch.autograd.grad(loss, list(ude.parameters()))


@pytest.mark.parametrize("act", [pyude.nn.RBF(), nn.GELU()], ids=repr)
def test_ude_weight_gradients_equal_torch_autograd(act):
    ude = pyude.UDE(lv_ude, network(act), {"alpha": 1.3, "gamma": 1.8}, trainable=["alpha"])
    for kw, tol in [({"dt": 0.05, "adaptive": False}, 1e-10), ({"rtol": 1e-6}, 1e-6)]:
        l1, g1 = weight_grads(ude, solve_numba, **kw)
        l2, g2 = weight_grads(ude, pyude.solve, **kw)
        assert abs(l1 - l2) <= tol * abs(l2)
        scale = max(float(g.abs().max()) for g in g2)
        assert max(float((a - b).abs().max()) for a, b in zip(g1, g2)) < tol * scale


def test_neural_ode_field_compiles():
    net = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 2)).double()
    node = pyude.NeuralODE(net)
    prob = pyude.ODEProblem(node.field, torch.tensor([1.0, 0.5], dtype=torch.float64),
                            (0.0, 1.0))
    a = solve_numba(prob, pyude.DP5(), saveat=[0.0, 0.5, 1.0], dt=0.1, adaptive=False)
    b = pyude.solve(prob, pyude.DP5(), saveat=[0.0, 0.5, 1.0], dt=0.1, adaptive=False)
    ga = torch.autograd.grad(a.u.sum(), list(node.parameters()))
    gb = torch.autograd.grad(b.u.sum(), list(node.parameters()))
    for x, y in zip(ga, gb):
        torch.testing.assert_close(x, y, rtol=1e-10, atol=1e-13)


def train(backend, steps=5):
    ude = pyude.UDE(lv_ude, network(pyude.nn.RBF(), seed=1), {"alpha": 1.3, "gamma": 1.8},
                    trainable=["alpha"])
    truth = torch.linspace(0.5, 2.0, 31, dtype=torch.float64)[:, None].expand(31, 2)
    opt = torch.optim.Adam(ude.parameters(), lr=1e-2)
    solve = solve_numba if backend == "numba" else pyude.solve
    losses = []
    for _ in range(steps):
        prob = pyude.ODEProblem(ude.field, torch.tensor(U0, dtype=torch.float64), (0.0, 3.0))
        sol = solve(prob, pyude.Tsit5(), saveat=TIMES, rtol=1e-6, atol=1e-6)
        loss = ((sol.u - truth) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses, ude.field.params["alpha"].item()


def test_a_short_training_run_gives_the_same_losses_on_both_backends():
    a, alpha_a = train("numba")
    b, alpha_b = train("native")
    np.testing.assert_allclose(a, b, rtol=1e-6)
    assert a[-1] < a[0]
    assert abs(alpha_a - alpha_b) < 1e-7


def test_layers_outside_the_subset_are_named():
    with pytest.raises(NetworkNotCompilable, match="layer 1 \\(LayerNorm\\)"):
        layer_spec(nn.Sequential(nn.Linear(2, 3), nn.LayerNorm(3), nn.Linear(3, 2)))
    with pytest.raises(NetworkNotCompilable, match="without bias"):
        layer_spec(nn.Sequential(nn.Linear(2, 3, bias=False)))
    with pytest.raises(NetworkNotCompilable, match="nn.Sequential"):
        layer_spec(nn.Linear(2, 2))
    ude = pyude.UDE(lv_ude, nn.Sequential(nn.Linear(2, 3), nn.ELU(), nn.Linear(3, 2)).double(),
                    {"alpha": 1.3, "gamma": 1.8})
    prob = pyude.ODEProblem(ude.field, torch.tensor(U0, dtype=torch.float64), (0.0, 3.0))
    reason = compiled_network_reason(prob)
    assert "ELU" in reason and "backend='native'" in reason


@pytest.mark.parametrize("solver", [pyude.Rodas5P(), pyude.KenCarp4()], ids=repr)
def test_a_ude_on_a_stiff_method_with_a_continuous_adjoint(solver):
    # the network's Jacobian (for the stiff steps) and VJP (for the adjoint) compiled
    ude = pyude.UDE(lv_ude, network(nn.Tanh()), {"alpha": 1.3, "gamma": 1.8}, trainable=["alpha"])
    prob = pyude.ODEProblem(ude.field, torch.tensor(U0, dtype=torch.float64), (0.0, 3.0))
    opts = build_options(prob, solver, saveat=TIMES, rtol=1e-10, atol=1e-10, maxiters=100_000)
    sol = solve_with_gradient(prob, solver, opts, pyude.InterpolatingAdjoint())
    g1 = torch.autograd.grad((sol.u ** 2).sum(), list(ude.parameters()))
    _, g2 = weight_grads(ude, pyude.solve, rtol=1e-10, atol=1e-10)
    scale = max(float(g.abs().max()) for g in g2)
    assert max(float((a - b).abs().max()) for a, b in zip(g1, g2)) < 1e-6 * scale


def test_network_functions_serve_the_loop_kernel_without_grad():
    from pyude.backends.numba import _loop as lp
    from pyude.backends.numba._results import _inputs
    from pyude.backends.numba._grad_model import network_functions
    from pyude.backends.numba._methods import pack_method
    ude = pyude.UDE(lv_ude, network(pyude.nn.RBF()), {"alpha": 1.3, "gamma": 1.8})
    prob = pyude.ODEProblem(ude.field, torch.tensor(U0, dtype=torch.float64), (0.0, 3.0))
    solver = pyude.Tsit5()
    opts = build_options(prob, solver, saveat=TIMES, rtol=1e-8, atol=1e-8, maxiters=100_000)
    functions, p = network_functions(prob)
    result = lp.solve_one(*functions, p, prob.u0.numpy(),
                          *_inputs(prob, pack_method(solver), opts, False))
    with torch.no_grad():
        ref = pyude.solve(prob, solver, saveat=TIMES, rtol=1e-8, atol=1e-8).u
    np.testing.assert_allclose(result[1][:len(TIMES)], ref.numpy(), rtol=1e-7, atol=1e-9)


def test_prepare_sees_the_optimisers_updates():
    from pyude.backends.numba._gradient import prepare
    ude = pyude.UDE(lv_ude, network(pyude.nn.RBF()), {"alpha": 1.3, "gamma": 1.8},
                    trainable=["alpha"])
    prob = pyude.ODEProblem(ude.field, torch.tensor(U0, dtype=torch.float64), (0.0, 3.0))
    opts = build_options(prob, pyude.Tsit5(), saveat=TIMES, rtol=1e-6, atol=1e-6, maxiters=100_000)
    solve = prepare(prob, pyude.Tsit5(), opts)
    opt = torch.optim.SGD(ude.parameters(), lr=1e-3)
    for _ in range(2):
        opt.zero_grad()
        u = solve()
        (u ** 2).sum().backward()
        opt.step()
    fresh = solve_with_gradient(prob, pyude.Tsit5(), opts).u
    torch.testing.assert_close(solve(), fresh, rtol=0, atol=0)
    with torch.no_grad():
        ref = pyude.solve(prob, pyude.Tsit5(), saveat=TIMES, rtol=1e-6, atol=1e-6).u
    torch.testing.assert_close(fresh, ref, rtol=1e-7, atol=1e-9)
