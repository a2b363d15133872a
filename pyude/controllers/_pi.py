"""The PI step-size controller with DifferentialEquations.jl's defaults."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass
class ControllerState:
    """What a controller remembers within one solve."""
    qold: float
    naccept: int = 0
    dtacc: float = 0.0        # the last accepted step and its error (predictive control)
    erracc: float = 1.0
    rejected: bool = False    # whether the last trial step was rejected


@dataclass(frozen=True, kw_only=True)
class StepBounds:
    """The limits every step-size controller shares, keyword-only: the step changes by a
    factor in [qmin, qmax] (qmax_first_step after the first step), a factor in
    [qsteady_min, qsteady_max] keeps the step as it is, and gamma is the safety factor."""

    qmin: float = 0.2
    qmax: float = 10.0
    qmax_first_step: float = 10000.0
    gamma: float = 0.9
    qsteady_min: float = 1.0
    qsteady_max: float = 1.0

    def __post_init__(self):
        name = type(self).__name__
        if not 0 < self.qmin <= 1 <= self.qmax:
            raise ValueError(f"{name} needs 0 < qmin <= 1 <= qmax; got "
                             f"qmin={self.qmin}, qmax={self.qmax}")
        if not 0 < self.gamma <= 1:
            raise ValueError(f"{name} needs 0 < gamma <= 1; got {self.gamma}")


@dataclass(frozen=True)
class PIController(StepBounds):
    """Proportional-integral step-size control (Hairer & Wanner, Solving ODEs II, IV.2).

    After a step with scaled error `EEst` (accepted when `EEst <= 1`):
    `q = clamp(EEst^beta1 / qold^beta2 / gamma, 1/qmax, 1/qmin)`, `dt_new = dt / q`, where
    `qold` is the previous accepted step's `EEst` (at least `qoldinit`). A rejected step
    shrinks by `min(1/qmin, EEst^beta1 / gamma)`. Defaults are OrdinaryDiffEq.jl's:
    `beta1 = 7/(10 p)`, `beta2 = 2/(5 p)` for a method of order p, `qmin = 1/5`,
    `qmax = 10` (10000 on the first step), `gamma = 9/10`, `qoldinit = 1e-4`; a method
    with gains of its own in OrdinaryDiffEq (DP5: 0.17, 0.04) gets those.
    """

    beta1: float | None = None
    beta2: float | None = None
    qoldinit: float = 1e-4

    def for_solver(self, solver) -> "PIController":
        """These settings with the gains left unset taken from the method, where
        OrdinaryDiffEq gives it its own (DP5: beta1 = 0.17, beta2 = 0.04)."""
        own = getattr(solver, "controller_betas", None)
        if own is None or (self.beta1 is not None and self.beta2 is not None):
            return self
        return dataclasses.replace(self, beta1=own[0] if self.beta1 is None else self.beta1,
                                   beta2=own[1] if self.beta2 is None else self.beta2)

    def betas(self, order: int) -> tuple[float, float]:
        beta1 = 7 / (10 * order) if self.beta1 is None else self.beta1
        beta2 = 2 / (5 * order) if self.beta2 is None else self.beta2
        return beta1, beta2

    def start(self) -> ControllerState:
        return ControllerState(qold=self.qoldinit)

    def accept_factor(self, state: ControllerState, eest: float, dt: float,
                      order: int) -> float:
        """The factor q with dt_new = dt / q after an accepted step."""
        beta1, beta2 = self.betas(order)
        qmax = self.qmax_first_step if state.naccept == 0 else self.qmax
        q = eest ** beta1 / state.qold ** beta2 / self.gamma
        q = max(1 / qmax, min(1 / self.qmin, q))
        if self.qsteady_min <= q <= self.qsteady_max:
            q = 1.0
        state.qold = max(eest, self.qoldinit)
        state.naccept += 1
        return q

    def reject_factor(self, state: ControllerState, eest: float, order: int) -> float:
        """The factor q with dt_new = dt / q after a rejected step (q > 1)."""
        beta1, _ = self.betas(order)
        return min(1 / self.qmin, eest ** beta1 / self.gamma)
