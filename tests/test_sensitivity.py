"""Gradients of solves by every sensitivity algorithm, and the NeuralODE and UDE modules."""

import numpy as np
import pytest
import torch
from torch import nn

import pyude
from pyude.problems import lotka_volterra, rober

from helpers import slow_for

NAMES = ["alpha", "beta", "gamma", "delta"]
ADJOINTS = [pyude.InterpolatingAdjoint(), pyude.QuadratureAdjoint(), pyude.GaussAdjoint(),
            pyude.BacksolveAdjoint()]
STABLE_ADJOINTS = ADJOINTS[:3]      # BacksolveAdjoint re-integrates u: unstable when stiff
GRADIENT_SOLVERS = [pyude.Tsit5(), pyude.Vern7(), pyude.Rodas5P(), pyude.KenCarp4()]


def _lv_loss(x, solver, sensealg, rtol):
    """sum of squares of the state at three observation times; x = (u0, p)."""
    prob = pyude.ODEProblem(lotka_volterra, x[:2], (0.0, 5.0), dict(zip(NAMES, x[2:])))
    sol = pyude.solve(prob, solver, saveat=[1.0, 2.5, 5.0], rtol=rtol, atol=rtol,
                      sensealg=sensealg)
    return (sol.u**2).sum()


def _central_differences(fn, x0, h=1e-6):
    out = []
    for i in range(x0.numel()):
        e = torch.zeros_like(x0)
        e[i] = h
        out.append((fn(x0 + e) - fn(x0 - e)).item() / (2 * h))
    return np.array(out)


@pytest.fixture(scope="module")
def lv_reference():
    """Central differences of the loss solved with Vern7 at 1e-13."""
    x0 = torch.tensor([1.0, 1.0, 1.5, 1.0, 3.0, 1.0], dtype=torch.float64)
    return _central_differences(lambda x: _lv_loss(x, pyude.Vern7(), None, 1e-13), x0)


@pytest.mark.parametrize("solver", GRADIENT_SOLVERS, ids=repr)
@pytest.mark.parametrize("sensealg", ADJOINTS, ids=repr)
def test_adjoint_gradients_match_finite_differences(sensealg, solver, lv_reference):
    x = torch.tensor([1.0, 1.0, 1.5, 1.0, 3.0, 1.0], dtype=torch.float64, requires_grad=True)
    _lv_loss(x, solver, sensealg, 1e-10).backward()
    np.testing.assert_allclose(x.grad.numpy(), lv_reference, rtol=1e-5)


@pytest.mark.parametrize("solver", slow_for(GRADIENT_SOLVERS, {"Rodas5P()", "KenCarp4()"}),
                         ids=repr)
def test_all_algorithms_agree(solver):
    grads = []
    for sensealg in [pyude.DirectAdjoint(), *ADJOINTS]:
        x = torch.tensor([1.0, 1.0, 1.5, 1.0, 3.0, 1.0], dtype=torch.float64,
                         requires_grad=True)
        _lv_loss(x, solver, sensealg, 1e-11).backward()
        grads.append(x.grad.numpy())
    for g in grads[1:]:
        np.testing.assert_allclose(g, grads[0], rtol=1e-6)


def _rober_loss(sensealg):
    def loss(log_k):
        p = dict(zip(["k1", "k2", "k3"], torch.exp(log_k)))
        sol = pyude.solve(pyude.ODEProblem(rober, (1.0, 0.0, 0.0), (0.0, 10.0), p),
                          pyude.Rodas5P(), rtol=1e-9, atol=1e-13, saveat=[1.0, 10.0],
                          sensealg=sensealg)
        return sol.u[:, 1].sum() * 1e4
    return loss


@pytest.mark.parametrize("sensealg", slow_for(STABLE_ADJOINTS, {"QuadratureAdjoint()",
                                                                 "GaussAdjoint()"}), ids=repr)
def test_stiff_rate_constants_in_log_scale(sensealg):
    """d y2(T) / d log k on ROBER through Rodas5P, against central differences."""
    loss = _rober_loss(sensealg)
    x = torch.log(torch.tensor([0.04, 3e7, 1e4], dtype=torch.float64)).requires_grad_()
    loss(x).backward()
    fd = _central_differences(lambda z: loss(z).detach(), x.detach(), h=1e-5)
    np.testing.assert_allclose(x.grad.numpy(), fd, rtol=1e-5)


def test_backsolve_on_a_stiff_problem_fails_loudly():
    """Re-integrating ROBER backwards blows up; the gradient must not come back silently
    wrong."""
    x = torch.log(torch.tensor([0.04, 3e7, 1e4], dtype=torch.float64)).requires_grad_()
    loss = _rober_loss(pyude.BacksolveAdjoint())(x)
    with pytest.raises(pyude.SolverError, match="DtLessThanMin|Unstable|MaxIters"):
        loss.backward()


def _mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 2)).double()


from pyude.problems import lotka_volterra_ude as _ude_f  # noqa: E402


@pytest.mark.parametrize("sensealg", [pyude.DirectAdjoint(), *ADJOINTS], ids=repr)
def test_ude_weight_gradients_match_finite_differences(sensealg):
    model = pyude.UDE(_ude_f, _mlp(), dict(alpha=1.3, delta=1.8), trainable=["alpha"],
                      solver=pyude.Tsit5(), sensealg=sensealg, rtol=1e-10, atol=1e-10)
    u0 = torch.tensor([0.44, 4.6], dtype=torch.float64)
    t = torch.linspace(0.0, 1.0, 5, dtype=torch.float64)
    (model(u0, t) ** 2).sum().backward()
    params = list(model.parameters())
    for param in params[:2]:
        flat = param.data.view(-1)
        for i in (0, flat.numel() - 1):
            saved = flat[i].item()
            with torch.no_grad():
                flat[i] = saved + 1e-6
                plus = (model(u0, t) ** 2).sum().item()
                flat[i] = saved - 1e-6
                minus = (model(u0, t) ** 2).sum().item()
                flat[i] = saved
            assert param.grad.view(-1)[i].item() == pytest.approx((plus - minus) / 2e-6,
                                                                   rel=1e-5, abs=1e-9)
    alpha = model.field.params["alpha"]
    assert alpha.grad is not None and alpha.grad.item() != 0.0


def test_gradcheck_interpolating_adjoint():
    def solution(u0, k):
        prob = pyude.ODEProblem(lambda u, p, t: [-p[0] * u[0] * u[1], p[0] * u[0] - u[1]],
                                u0, (0.0, 1.0), k)
        return pyude.solve(prob, pyude.Tsit5(), rtol=1e-11, atol=1e-11, saveat=[0.5, 1.0],
                           sensealg=pyude.InterpolatingAdjoint()).u

    u0 = torch.tensor([1.0, 0.5], dtype=torch.float64, requires_grad=True)
    k = torch.tensor([0.7], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(solution, (u0, k), atol=1e-6)


def test_unused_parameter_gets_exactly_zero_adjoint_gradient():
    p = torch.tensor([1.5, 1.0, 3.0, 1.0, 7.0], dtype=torch.float64, requires_grad=True)

    def lv(u, p, t):
        x, y = u
        return [p[0] * x - p[1] * x * y, -p[2] * y + p[3] * x * y]

    sol = pyude.solve(pyude.ODEProblem(lv, [1.0, 1.0], (0, 1), p), pyude.Tsit5(),
                      saveat=[1.0], sensealg=pyude.QuadratureAdjoint())
    sol.u.sum().backward()
    assert p.grad[4].item() == 0.0 and p.grad[:4].abs().min() > 0


def test_neural_ode_trains():
    torch.manual_seed(0)
    true = torch.tensor([[-0.1, 2.0], [-2.0, -0.1]], dtype=torch.float64)
    t = torch.linspace(0.0, 2.0, 21, dtype=torch.float64)
    u0 = torch.tensor([[2.0, 0.0], [0.0, 1.5]], dtype=torch.float64)
    prob = pyude.ODEProblem(lambda u, p, tt: (u.movedim(0, -1) @ true).movedim(-1, 0), u0,
                            (0.0, 2.0))
    data = pyude.solve(prob, pyude.Tsit5(), saveat=t, rtol=1e-8, atol=1e-8).u
    net = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 2)).double()
    model = pyude.NeuralODE(net, pyude.Tsit5(), rtol=1e-5, atol=1e-6)
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    losses = []
    for _ in range(150):
        opt.zero_grad()
        loss = ((model(u0, t) - data) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 20


def test_ude_trains_and_learns_a_physical_parameter():
    torch.manual_seed(0)
    p = dict(alpha=1.3, beta=0.9, gamma=0.8, delta=1.8)
    t = torch.linspace(0.0, 3.0, 31, dtype=torch.float64)
    u0 = torch.tensor([0.44249296, 4.6280594], dtype=torch.float64)
    # The paper's x' = 1.3 x - 0.9 x y, y' = 0.8 x y - 1.8 y in lotka_volterra's parameters.
    data = pyude.solve(pyude.ODEProblem(lotka_volterra,
                                        u0, (0, 3), dict(alpha=1.3, beta=0.9, gamma=1.8,
                                                         delta=0.8)),
                       pyude.Tsit5(), saveat=t, rtol=1e-8, atol=1e-8).u
    net = nn.Sequential(nn.Linear(2, 5), pyude.nn.RBF(), nn.Linear(5, 5), pyude.nn.RBF(),
                        nn.Linear(5, 2)).double()
    model = pyude.UDE(_ude_f, net, dict(p, alpha=1.0), trainable=["alpha"],
                      solver=pyude.Tsit5(), rtol=1e-6, atol=1e-6)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    first = None
    for _ in range(200):
        opt.zero_grad()
        loss = ((model(u0, t) - data) ** 2).mean()
        loss.backward()
        opt.step()
        first = first if first is not None else loss.item()
    assert loss.item() < first / 100
    assert model.physical_parameters()["alpha"] != 1.0


# --- the network subset that crosses to Julia ---------------------------------------------

def test_flat_layout_is_luxs_column_major_order():
    net = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1)).double()
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]))
        net[0].bias.copy_(torch.tensor([7.0, 8.0, 9.0]))
        net[2].weight.copy_(torch.tensor([[10.0, 11.0, 12.0]]))
        net[2].bias.copy_(torch.tensor([13.0]))
    flat = pyude.nn.to_flat(net)
    # vec(W1) column-major: W1[:,0] then W1[:,1]; then b1; then W2 and b2.
    assert flat.tolist() == [1, 3, 5, 2, 4, 6, 7, 8, 9, 10, 11, 12, 13]
    back = pyude.nn.from_flat(net, flat)
    for got, param in zip(back, net.parameters()):
        assert torch.equal(got, param.detach())
    assert pyude.nn.lux_layers(net) == [(2, 3, "tanh"), (3, 1, "identity")]


def test_network_outside_the_julia_subset_is_named():
    with pytest.raises(ValueError, match="layer 1 \\(Dropout\\) is outside the subset"):
        pyude.nn.lux_layers(nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.1)))
    with pytest.raises(ValueError, match="must be an nn.Sequential"):
        pyude.nn.lux_layers(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="without bias"):
        pyude.nn.lux_layers(nn.Sequential(nn.Linear(2, 2, bias=False)))


# --- errors ---------------------------------------------------------------------------------

def test_sensealg_errors():
    prob = pyude.problems.lotka_volterra_problem()
    with pytest.raises(TypeError, match="pass an instance, `InterpolatingAdjoint\\(\\)`"):
        pyude.solve(prob, pyude.Tsit5(), sensealg=pyude.InterpolatingAdjoint)
    with pytest.raises(TypeError, match="sensealg must be a pyude sensitivity algorithm"):
        pyude.solve(prob, pyude.Tsit5(), sensealg="adjoint")


def test_module_errors():
    with pytest.raises(ValueError, match="trainable names \\['gamma'\\] are not in p"):
        pyude.UDE(_ude_f, _mlp(), dict(alpha=1.0, delta=1.0), trainable=["gamma"])
    with pytest.raises(TypeError, match="UDE got unknown keyword.*`rtl`"):
        pyude.UDE(_ude_f, _mlp(), dict(alpha=1.0, delta=1.0), rtl=1e-6)
    with pytest.raises(ValueError, match="at least two times"):
        pyude.NeuralODE(_mlp())(torch.ones(2, dtype=torch.float64), [0.0])
    with pytest.raises(ValueError, match="unknown backend 'jl'"):
        pyude.NeuralODE(_mlp(), backend="jl")


def test_checkpointed_direct_adjoint_matches_direct():
    grads = []
    for sensealg in [pyude.DirectAdjoint(), pyude.DirectAdjoint(checkpointing=True)]:
        x = torch.tensor([1.0, 1.0, 1.5, 1.0, 3.0, 1.0], dtype=torch.float64,
                         requires_grad=True)
        _lv_loss(x, pyude.Tsit5(), sensealg, 1e-11).backward()
        grads.append(x.grad.numpy())
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-7)
    with pytest.raises(ValueError, match="checkpoints at the saved times"):
        x = torch.ones(2, dtype=torch.float64, requires_grad=True)
        pyude.solve(pyude.ODEProblem(lotka_volterra, x, (0, 1), dict(zip(NAMES, [1.0] * 4))),
                    pyude.Tsit5(), sensealg=pyude.DirectAdjoint(checkpointing=True))


def test_checkpointed_failure_keeps_times_matched_to_states():
    x = torch.ones(2, dtype=torch.float64, requires_grad=True)
    prob = pyude.ODEProblem(lotka_volterra, x, (0.0, 10.0), dict(zip(NAMES, [1.5, 1.0, 3.0, 1.0])))
    sol = pyude.solve(prob, pyude.Tsit5(), saveat=[0.0, 0.1, 5.0, 10.0], maxiters=8,
                      throw=False, sensealg=pyude.DirectAdjoint(checkpointing=True))
    assert sol.retcode is pyude.ReturnCode.MaxIters
    assert sol.t.tolist() == [0.0, 0.1][:len(sol)] and len(sol) == sol.u.shape[0] >= 1
    assert sol.u[0].tolist() == [1.0, 1.0]


def _forced_decay_gradient(sensealg, f):
    k = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    prob = pyude.ODEProblem(f, [1.0, 0.5], (0.0, 2.0), dict(k=k))
    sol = pyude.solve(prob, pyude.Tsit5(), saveat=[1.0, 2.0], rtol=1e-10, atol=1e-10,
                      sensealg=sensealg)
    (grad,) = torch.autograd.grad((sol.u ** 2).sum(), k)
    return float(grad)


@pytest.mark.parametrize("sensealg", [pyude.QuadratureAdjoint(), pyude.GaussAdjoint()],
                         ids=repr)
def test_quadrature_takes_tensor_times_and_falls_back_for_python_numbers(sensealg):
    # The five Gauss nodes of a step go through f as one batch with a tensor of times; an
    # f that needs a Python number for t is asked node by node instead: same gradient.
    import math

    def tensor_time(u, p, t):
        return [-p.k * u[0] + torch.as_tensor(t).cos(), -p.k * u[1] * u[0]]

    def python_time(u, p, t):
        return [-p.k * u[0] + math.cos(t), -p.k * u[1] * u[0]]

    direct = _forced_decay_gradient(pyude.DirectAdjoint(), python_time)
    for f in (tensor_time, python_time):
        assert _forced_decay_gradient(sensealg, f) == pytest.approx(direct, rel=1e-6)


def test_within_one_solve_the_parameter_walk_is_done_once_per_problem():
    """Every check on the way down asks for the problem's differentiable tensors; inside
    one `solve` they are worked out once, outside (and in another thread) afresh."""
    import threading

    from pyude.sensitivity._adjoint import one_solve, param_spec
    net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2))
    ude = pyude.UDE(lambda u, p, t, nn: nn(u), net.double())
    prob = pyude.ODEProblem(ude.field, torch.ones(2, dtype=torch.float64), (0.0, 1.0))
    assert param_spec(prob) is not param_spec(prob)
    with one_solve():
        spec = param_spec(prob)
        assert param_spec(prob) is spec
        other = pyude.ODEProblem(ude.field, torch.ones(2, dtype=torch.float64), (0.0, 1.0))
        assert param_spec(other) is not spec
        seen = []
        worker = threading.Thread(target=lambda: seen.append(param_spec(prob)))
        worker.start()
        worker.join()
        assert seen[0] is not spec
    net[0].weight.requires_grad_(False)          # after the solve, a change is seen
    assert len(param_spec(prob).module_params) == len(spec.module_params) - 1
