"""`fit`: train a NeuralODE or UDE on data, with torch.optim (Adam, then LBFGS)."""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch import Tensor, nn

from ._errors import SolverError
from ._model import RHS


@dataclass
class FitResult:
    """What a fit did: the loss after every iteration, the stage of each, and how it ended."""

    losses: list[float] = field(default_factory=list)
    stages: list[str] = field(default_factory=list)
    best_loss: float = math.inf
    stopped: str = ""          # why a stage ended early ("" when every stage ran to the end)
    seconds: float = 0.0
    seed: int = 0

    @property
    def final_loss(self) -> float:
        return self.losses[-1] if self.losses else math.nan


def check_data(t, data) -> tuple[Tensor, Tensor]:
    """Times (T,) strictly increasing and finite, data (T, *batch, n) finite, T >= 3."""
    t = torch.as_tensor(t, dtype=torch.float64)
    data = torch.as_tensor(data)
    data = data.to(torch.float64) if not data.is_floating_point() else data
    if t.ndim != 1:
        raise ValueError(f"t must be 1-D (one time per observation); got shape {tuple(t.shape)}")
    if t.numel() < 3:
        raise ValueError(f"need at least 3 observation times to fit; got {t.numel()}")
    if not bool(torch.isfinite(t).all()):
        raise ValueError("t contains NaN or Inf")
    if not bool((t[1:] > t[:-1]).all()):
        raise ValueError("t must be strictly increasing; sort the observations by time")
    if data.ndim < 2 or data.shape[0] != t.numel():
        raise ValueError(f"data must have shape (len(t), ..., n) = ({t.numel()}, ..., n); got "
                         f"{tuple(data.shape)}")
    bad = ~torch.isfinite(data)
    if bool(bad.any()):
        where = tuple(int(i) for i in bad.nonzero()[0])
        raise ValueError(f"data contains NaN or Inf (first at index {where}); drop or impute "
                         f"those observations before fitting")
    return t, data


_SMOOTHED: dict[tuple, tuple[Tensor, Tensor]] = {}


def smoothed_derivatives(t: Tensor, data: Tensor, smoothing: float | None = None):
    """Smoothing-spline estimates of the states and their time derivatives at `t` (scipy's
    make_smoothing_spline, its smoothing chosen by generalised cross-validation unless
    given). The last few results are kept: the fit, the noise estimate and the candidate
    search of one run smooth the same data."""
    key = (t.numpy().tobytes(), data.detach().cpu().numpy().tobytes(), tuple(data.shape),
           data.dtype, smoothing)
    if key not in _SMOOTHED:
        if len(_SMOOTHED) >= 4:
            _SMOOTHED.pop(next(iter(_SMOOTHED)))
        _SMOOTHED[key] = _smooth(t, data, smoothing)
    return _SMOOTHED[key]


def _smooth(t: Tensor, data: Tensor, smoothing: float | None):
    from scipy.interpolate import make_smoothing_spline

    tt = t.numpy()
    flat = data.detach().cpu().numpy().reshape(len(tt), -1)
    values, slopes = np.empty_like(flat), np.empty_like(flat)
    for j in range(flat.shape[1]):
        spline = make_smoothing_spline(tt, flat[:, j], lam=smoothing)
        values[:, j] = spline(tt)
        slopes[:, j] = spline.derivative()(tt)
    shape = data.shape
    as_tensor = lambda a: torch.as_tensor(a.reshape(shape), dtype=data.dtype)  # noqa: E731
    return as_tensor(values), as_tensor(slopes)


def _progress(total: int, enabled: bool, desc: str):
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, leave=False)


class _Stop(Exception):
    """Ends a stage; `whole_fit` also ends the stages after it (divergence, the callback)."""

    def __init__(self, message: str, whole_fit: bool = True):
        super().__init__(message)
        self.whole_fit = whole_fit


def fit(model: nn.Module, t, data, *, adam_iters: int = 300, adam_lr: float = 0.01,
        lbfgs_iters: int = 0, collocation_iters: int = 0, collocation_lr: float = 0.01,
        smoothing: float | None = None,
        windows: int | None = None, seed: int = 0, patience: int | None = None,
        min_improvement: float = 1e-4, divergence: float = 1e4,
        callback: Callable[[int, float, nn.Module], bool] | None = None,
        target_loss: float | None = None, progress: bool = True) -> FitResult:
    """Fit `model` (a `NeuralODE` or `UDE`) to `data` observed at `t`.

    Stages, each optional: collocation pre-training (the vector field fitted to smoothed
    derivative estimates, no solves), Adam on the trajectory loss, then LBFGS.

    Arguments:
        model: a `NeuralODE` or `UDE`; its first observation is the initial state.
        t, data: observation times (strictly increasing) and states, shape (len(t), ..., n).
        adam_iters, adam_lr, lbfgs_iters, collocation_iters, collocation_lr: the schedule
            (after collocation the model is near a fit already: a smaller `adam_lr` keeps
            Adam from throwing that away).
        smoothing: the smoothing spline's penalty for collocation (None: chosen by GCV).
        windows: fit on consecutive windows of this many observations, each started from its
            first observation (multiple shooting without continuity penalty).
        seed: seeds torch's generator, so a fit is repeatable.
        patience: stop a stage after this many iterations without improving the best loss by
            the relative amount `min_improvement`.
        divergence: a loss this many times the stage's first loss counts as divergence.
        callback: `callback(iteration, loss, model)`; returning True stops the fit.
        target_loss: stop once the trajectory loss reaches this (e.g. the noise level of
            the data: fitting below it fits the noise).
        progress: show a tqdm progress bar (when tqdm is installed).

    Returns:
        a `FitResult`. The model keeps the parameters with the best trajectory loss (the
        collocation stage only prepares them). A solve that fails, or a loss that is not
        finite or grows `divergence` times, stops the fit with the reason in
        `result.stopped`.
    """
    _check_schedule(adam_iters=adam_iters, lbfgs_iters=lbfgs_iters,
                    collocation_iters=collocation_iters, adam_lr=adam_lr,
                    collocation_lr=collocation_lr, windows=windows, patience=patience,
                    divergence=divergence, target_loss=target_loss)
    t, data = check_data(t, data)
    torch.manual_seed(seed)
    result = FitResult(seed=seed)
    start = time.perf_counter()
    best_state = copy.deepcopy(model.state_dict())
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters")
    data = data.to(params[0].dtype)

    def trajectory_loss() -> Tensor:
        if windows is None:
            return ((model(data[0], t) - data) ** 2).mean()
        losses = []
        for s in range(0, len(t) - 1, windows - 1):
            e = min(s + windows, len(t))
            if e - s >= 2:
                losses.append(((model(data[s], t[s:e]) - data[s:e]) ** 2).mean())
        return torch.stack(losses).mean()

    stage_start: dict[str, float] = {}

    def record(stage: str, value: float, iteration: int, state: dict) -> None:
        """`state`: the parameters that gave `value` (taken before the optimizer moved)."""
        nonlocal best_state
        first = stage_start.setdefault(stage, value)
        if not math.isfinite(value) or (iteration > 0 and value > divergence * first):
            raise _Stop(f"{stage}: the loss diverged to {value:.3g} at iteration {iteration} "
                        f"(it started at {first:.3g}); lower the learning rate")
        result.losses.append(value)
        result.stages.append(stage)
        trajectory = stage != "collocation"
        if trajectory and value < result.best_loss:
            result.best_loss = value
            best_state = state
        elif not trajectory:
            best_state = copy.deepcopy(model.state_dict())
        if callback is not None and callback(len(result.losses) - 1, value, model):
            raise _Stop(f"{stage}: stopped by the callback at iteration {iteration}")
        if trajectory and target_loss is not None and value <= target_loss:
            raise _Stop(f"{stage}: reached the target loss {target_loss:.3g} at iteration "
                        f"{iteration}")
        stage_losses = [v for v, st in zip(result.losses, result.stages) if st == stage]
        if patience is not None and len(stage_losses) > patience:
            before = min(stage_losses[:-patience])
            if min(stage_losses[-patience:]) > before * (1 - min_improvement):
                raise _Stop(f"{stage}: no improvement in {patience} iterations (early stopping)",
                            whole_fit=False)

    stages = []
    if collocation_iters:
        stages.append(("collocation", collocation_iters))
    if adam_iters:
        stages.append(("adam", adam_iters))
    if lbfgs_iters:
        stages.append(("lbfgs", lbfgs_iters))
    try:
        for stage, iters in stages:
            model.load_state_dict(best_state)       # each stage starts from the best so far
            bar = _progress(iters, progress, stage)
            try:
                lr = collocation_lr if stage == "collocation" else adam_lr
                _run_stage(stage, iters, model, params, t, data, smoothing, lr,
                           trajectory_loss, record, bar)
            except _Stop as stop:
                result.stopped = str(stop)
                if stop.whole_fit:
                    break
            except SolverError as err:
                result.stopped = f"{stage}: a solve failed ({err.retcode}); {err}"
                break
            finally:
                if bar is not None:
                    bar.close()
    finally:
        model.load_state_dict(best_state)
        result.seconds = time.perf_counter() - start
    return result


def _check_schedule(**values) -> None:
    """Refuse a schedule that cannot mean anything, before any work."""
    for name in ("adam_iters", "lbfgs_iters", "collocation_iters"):
        value = values[name]
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{name} must be a whole number of iterations >= 0 (0 skips the "
                             f"stage); got {value!r}")
    for name in ("adam_lr", "collocation_lr"):
        value = values[name]
        if not (isinstance(value, (int, float)) and 0 < value < math.inf):
            raise ValueError(f"{name} must be a learning rate > 0; got {value!r}")
    windows = values["windows"]
    if windows is not None and (not isinstance(windows, int) or isinstance(windows, bool)
                                or windows < 2):
        raise ValueError(f"windows must be a number of observations >= 2 per window (each "
                         f"window starts at its first observation), or None for the whole "
                         f"series; got {windows!r}")
    patience = values["patience"]
    if patience is not None and (not isinstance(patience, int) or patience < 1):
        raise ValueError(f"patience must be a number of iterations >= 1, or None; got "
                         f"{patience!r}")
    if not (isinstance(values["divergence"], (int, float)) and values["divergence"] > 1):
        raise ValueError(f"divergence must be a factor > 1; got {values['divergence']!r}")
    target = values["target_loss"]
    if target is not None and not (isinstance(target, (int, float)) and 0 <= target < math.inf):
        raise ValueError(f"target_loss must be a loss >= 0, or None; got {target!r}")


def _field_at_all_times(rhs: RHS, t: Tensor, states: Tensor) -> Callable[[], Tensor]:
    """The vector field at every observation, as one batched call when the model allows:
    the times enter as a tensor that broadcasts against the states' components. A model
    that needs a Python float time (or branches on it) is evaluated point by point; the
    batched call is kept only when it agrees with that exactly."""
    def pointwise() -> Tensor:
        return torch.stack([rhs(float(ti), ui) for ti, ui in zip(t, states)])

    times = t.to(states.dtype).reshape(-1, *[1] * (states.ndim - 2))

    def batched() -> Tensor:
        return rhs(times, states)

    with torch.no_grad():
        reference = pointwise()
        try:
            trial = batched()
        except (TypeError, RuntimeError, ValueError):
            return pointwise
    same = trial.shape == reference.shape and torch.allclose(trial, reference, rtol=1e-12,
                                                             atol=1e-12)
    return batched if same else pointwise


def _run_stage(stage, iters, model, params, t, data, smoothing, lr, trajectory_loss, record,
               bar):
    if stage == "collocation":
        states, slopes = smoothed_derivatives(t, data, smoothing)
        field_at = _field_at_all_times(RHS(model.field, None), t, states)
        opt = torch.optim.Adam(params, lr=lr)
        for i in range(iters):
            opt.zero_grad()
            loss = ((field_at() - slopes) ** 2).mean()
            loss.backward()
            opt.step()
            record(stage, loss.item(), i, None)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.3e}")
        return
    if stage == "adam":
        opt = torch.optim.Adam(params, lr=lr)
        for i in range(iters):
            opt.zero_grad()
            loss = trajectory_loss()
            loss.backward()
            record(stage, loss.item(), i, copy.deepcopy(model.state_dict()))
            opt.step()
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.3e}")
        return
    def lbfgs():
        # One iteration per step() call, so every iteration is recorded; max_eval must then
        # be given, or its default (1.25 max_iter) leaves the line search no evaluations.
        return torch.optim.LBFGS(params, lr=1.0, max_iter=1, max_eval=25, history_size=20,
                                 line_search_fn="strong_wolfe")

    opt = lbfgs()

    def closure():
        opt.zero_grad()
        loss = trajectory_loss()
        loss.backward()
        return loss

    stalls = 0
    for i in range(iters):
        before = copy.deepcopy(model.state_dict())
        loss = opt.step(closure)
        record(stage, float(loss.detach()), i, before)
        moved = any(not torch.equal(p.detach(), before[name])
                    for name, p in model.named_parameters() if p.requires_grad)
        stalls = 0 if moved else stalls + 1
        if stalls == 1:
            # A failed line search leaves LBFGS repeating the same direction forever;
            # a fresh history starts again from steepest descent.
            opt = lbfgs()
        elif stalls > 1:
            raise _Stop(f"{stage}: converged at iteration {i} (no decrease along steepest "
                        f"descent either: a minimum to within the solver's tolerance)",
                        whole_fit=False)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{float(loss.detach()):.3e}")
