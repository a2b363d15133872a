"""A NeuralODE/UDE called again with the same times, options and network runs its prepared
compiled solve (`pyude._repeat`): the same results as the full path, and the full path
again whenever something the checks looked at has changed."""

import pytest
import torch
from torch import nn

import pyude
from pyude import _modules

T = torch.linspace(0.0, 1.0, 6, dtype=torch.float64)
U0 = torch.tensor([0.5, 1.2], dtype=torch.float64)


def make_ude(seed=0):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(2, 4), pyude.nn.RBF(), nn.Linear(4, 2)).double()
    return pyude.UDE(_model, net, dict(a=0.7), trainable=["a"], solver=pyude.Tsit5(),
                     backend="numba", rtol=1e-7, atol=1e-7)


def _model(u, p, t, nn):
    m = nn(u)
    return [p.a * u[0] + m[0], -u[1] + m[1]]


def train(ude, steps=4):
    opt = torch.optim.Adam(ude.parameters(), lr=1e-2)
    losses, grads = [], []
    for _ in range(steps):
        opt.zero_grad()
        loss = ude(U0, T).pow(2).mean()
        loss.backward()
        losses.append(loss.item())
        grads.append(torch.cat([p.grad.reshape(-1) for p in ude.parameters()]))
        opt.step()
    return losses, grads


def test_the_prepared_solve_trains_exactly_as_the_full_path(monkeypatch):
    cached = train(make_ude())
    prepared = make_ude()
    assert prepared._repeat is None
    prepared(U0, T).sum().backward()
    assert prepared._repeat is not None and prepared._repeat[1] is not None
    monkeypatch.setattr(_modules, "prepared_solve", lambda *args: None)
    full = train(make_ude())
    assert cached[0] == full[0]
    for a, b in zip(cached[1], full[1]):
        assert torch.equal(a, b)


def _fresh_output(ude, u0=U0, t=T):
    """The same call through the full path, on a copy of the module without its cache."""
    import copy
    other = copy.deepcopy(ude)
    other._repeat = None
    return other(u0, t)


@pytest.mark.parametrize("change", ["times", "activation", "layer", "frozen", "dtype-of-a"])
def test_a_changed_call_takes_the_full_path_again(change):
    ude = make_ude()
    ude(U0, T).sum().backward()                  # prepared now
    key = ude._repeat[0]
    t = T
    if change == "times":
        t = torch.linspace(0.0, 2.0, 6, dtype=torch.float64)
    elif change == "activation":
        ude.net[1] = nn.Tanh()
    elif change == "layer":
        ude.net[2] = nn.Linear(4, 2).double()
    elif change == "frozen":
        ude.net[0].weight.requires_grad_(False)
    else:
        ude.field.params["a"] = nn.Parameter(torch.tensor(0.9, dtype=torch.float64))
    ude.zero_grad()
    out = ude(U0, t)
    assert ude._repeat[0] != key
    assert torch.allclose(out, _fresh_output(ude, t=t), rtol=0, atol=0)
    out.sum().backward()
    if change == "frozen":
        assert ude.net[0].weight.grad is None


def test_a_failed_prepared_solve_raises_as_solve_does():
    ude = pyude.NeuralODE(nn.Sequential(nn.Linear(2, 2)).double(), pyude.Tsit5(),
                          backend="numba", maxiters=40)
    with torch.no_grad():
        ude.net[0].weight.copy_(torch.tensor([[0.1, 0.0], [0.0, 0.1]]))
    ude(U0, T).sum().backward()
    assert ude._repeat[1] is not None
    with torch.no_grad():                         # a stiff, fast decay: 40 steps are not enough
        ude.net[0].weight.copy_(torch.tensor([[-3e3, 0.0], [0.0, -1.0]]))
    with pytest.raises(pyude.SolverError, match="MaxIters"):
        ude(U0, T)


def test_without_a_gradient_or_on_torch_nothing_is_prepared():
    ude = make_ude()
    with torch.no_grad():
        ude(U0, T)
    assert ude._repeat is None
    native = pyude.UDE(_model, make_ude().net, dict(a=0.7), backend="native")
    native(U0, T).sum().backward()
    assert native._repeat is not None and native._repeat[1] is None


def test_a_trained_module_still_pickles():
    import pickle
    ude = make_ude()
    ude(U0, T).sum().backward()
    assert ude._repeat[1] is not None
    copy = pickle.loads(pickle.dumps(ude))
    assert copy._repeat is None
    assert torch.equal(copy(U0, T), ude(U0, T))


def test_an_option_changed_in_place_takes_the_full_path():
    ude = make_ude()
    ude.options["atol"] = [1e-7, 1e-7]
    ude(U0, T).sum().backward()
    key = ude._repeat[0]
    ude.options["atol"][0] = 1e-2                 # the prepared solve copied the old value
    out = ude(U0, T)
    assert ude._repeat[0] != key
    assert torch.equal(out, _fresh_output(ude))


def test_the_prepared_solve_keeps_no_graph_of_its_first_call():
    import gc
    import weakref
    ude = make_ude()
    encoder = torch.ones(2, dtype=torch.float64, requires_grad=True)
    first = weakref.ref(encoder)
    ude(U0 * encoder, T).sum().backward()         # a u0 with a graph behind it
    assert ude._repeat[1] is not None
    del encoder
    gc.collect()
    assert first() is None
