"""`pyude.fit`: schedules, repeatability, stopping, and bad data."""

import math

import numpy as np
import pytest
import torch
from torch import nn

import pyude
from pyude.problems import lotka_volterra, lotka_volterra_ude


def _data(noise=0.0, seed=1):
    t = torch.linspace(0.0, 3.0, 31, dtype=torch.float64)
    u0 = torch.tensor([0.44249296, 4.6280594], dtype=torch.float64)
    p = dict(alpha=1.3, beta=0.9, gamma=1.8, delta=0.8)
    truth = pyude.solve(pyude.ODEProblem(lotka_volterra, u0, (0.0, 3.0), p), pyude.Vern7(),
                        saveat=t, rtol=1e-10, atol=1e-10).u
    gen = torch.Generator().manual_seed(seed)
    return t, truth + noise * truth.mean(0) * torch.randn(truth.shape, generator=gen,
                                                          dtype=torch.float64)


def _ude(f=None, seed=0):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(2, 5), pyude.nn.RBF(), nn.Linear(5, 5), pyude.nn.RBF(),
                        nn.Linear(5, 2)).double()

    physics = lotka_volterra_ude
    return pyude.UDE(f or physics, net, dict(alpha=1.3, delta=1.8), solver=pyude.Tsit5(),
                     rtol=1e-6, atol=1e-6)


def test_collocation_adam_and_lbfgs_reduce_the_loss():
    t, data = _data()
    model = _ude()
    first = ((model(data[0], t) - data) ** 2).mean().item()
    result = pyude.fit(model, t, data, collocation_iters=150, adam_iters=60, lbfgs_iters=10,
                       progress=False)
    assert result.stopped == ""
    assert set(result.stages) == {"collocation", "adam", "lbfgs"}
    final = ((model(data[0], t) - data) ** 2).mean().item()
    assert final < first / 100 and final == pytest.approx(result.best_loss, rel=1e-6)


def test_lbfgs_stage_moves_past_adam():
    """LBFGS after Adam keeps lowering the loss (its line search has evaluations to spend)."""
    t, data = _data(noise=0.02)
    model = _ude()
    result = pyude.fit(model, t, data, collocation_iters=150, adam_iters=30, lbfgs_iters=15,
                       adam_lr=1e-3, progress=False)
    losses = np.array(result.losses)
    stages = np.array(result.stages)
    adam_best, lbfgs_best = losses[stages == "adam"].min(), losses[stages == "lbfgs"].min()
    assert lbfgs_best < 0.9 * adam_best        # a stalled line search leaves them equal


@pytest.mark.parametrize("clock", [math.cos, torch.cos], ids=["python-float-t", "tensor-t"])
def test_collocation_with_a_time_dependent_model(clock):
    """A model that needs t as a Python float is evaluated point by point, one that takes a
    tensor in one batched call; both fit."""
    t, data = _data()

    def forced(u, p, t, nn_):
        x, y = u
        m1, m2 = nn_(u)
        wobble = 1e-3 * clock(torch.as_tensor(t) if clock is torch.cos else t)
        return [p.alpha * x + m1 + wobble, -p.delta * y + m2]

    model = _ude(forced)
    result = pyude.fit(model, t, data, collocation_iters=100, adam_iters=0, progress=False)
    assert result.losses[-1] < result.losses[0] / 10


def test_same_seed_same_fit():
    t, data = _data(noise=0.05)
    runs = []
    for _ in range(2):
        model = _ude(seed=3)
        runs.append(pyude.fit(model, t, data, adam_iters=15, seed=7, progress=False).losses)
    assert runs[0] == runs[1]


def test_windows_fit_from_each_windows_first_observation():
    t, data = _data()
    model = _ude()
    result = pyude.fit(model, t, data, adam_iters=20, windows=11, progress=False)
    assert result.losses[-1] < result.losses[0]


def test_a_diverging_fit_stops_with_a_message_and_keeps_the_best_parameters():
    t, data = _data()
    model = _ude()
    result = pyude.fit(model, t, data, adam_iters=50, adam_lr=50.0, progress=False)
    assert result.stopped.startswith("adam:")
    assert len(result.losses) < 50
    assert ((model(data[0], t) - data) ** 2).mean().item() == pytest.approx(result.best_loss)


def test_early_stopping_and_callback():
    t, data = _data()
    result = pyude.fit(_ude(), t, data, adam_iters=200, adam_lr=1e-9, patience=3,
                       progress=False)
    assert "early stopping" in result.stopped and len(result.losses) < 200
    seen = []
    result = pyude.fit(_ude(), t, data, adam_iters=50,
                       callback=lambda i, loss, m: seen.append(loss) or i == 4, progress=False)
    assert len(seen) == 5 and "callback" in result.stopped


@pytest.mark.parametrize("t,data,match", [
    ([0.0, 1.0], np.zeros((2, 2)), "at least 3 observation times"),
    ([0.0, 2.0, 1.0], np.zeros((3, 2)), "strictly increasing"),
    ([0.0, 1.0, math.nan], np.zeros((3, 2)), "t contains NaN"),
    ([0.0, 1.0, 2.0], np.zeros((4, 2)), "data must have shape"),
    ([0.0, 1.0, 2.0], np.array([[1.0, 2.0], [math.nan, 1.0], [1.0, 1.0]]),
     "data contains NaN or Inf \\(first at index \\(1, 0\\)\\)"),
])
def test_bad_data_is_refused(t, data, match):
    with pytest.raises(ValueError, match=match):
        pyude.fit(_ude(), t, data, progress=False)


@pytest.mark.parametrize("options,match", [
    (dict(adam_iters=-5), "adam_iters must be a whole number of iterations >= 0"),
    (dict(lbfgs_iters=2.5), "lbfgs_iters must be a whole number"),
    (dict(windows=1), "windows must be a number of observations >= 2"),
    (dict(adam_lr=0.0), "adam_lr must be a learning rate > 0"),
    (dict(patience=0), "patience must be a number of iterations >= 1"),
    (dict(target_loss=-1.0), "target_loss must be a loss >= 0"),
])
def test_a_schedule_that_means_nothing_is_refused(options, match):
    t, data = _data()
    with pytest.raises(ValueError, match=match):
        pyude.fit(_ude(), t, data, progress=False, **options)


def test_the_fit_stops_at_the_target_loss():
    t, data = _data()
    result = pyude.fit(_ude(), t, data, collocation_iters=100, adam_iters=50,
                       target_loss=1e6, progress=False)
    assert result.stopped == "adam: reached the target loss 1e+06 at iteration 0"
    assert len(result.losses) == 101


def test_physical_parameters_warn_nothing():
    import warnings
    model = pyude.UDE(lotka_volterra_ude, _ude().net, dict(alpha=1.3, delta=1.8),
                      trainable=["alpha"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert model.physical_parameters() == {"alpha": 1.3, "delta": 1.8}
