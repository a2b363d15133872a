"""Gustafsson's predictive step-size controller, the default of Hairer's RADAU5 and RODAS."""

from __future__ import annotations

from dataclasses import dataclass

from ._pi import ControllerState, StepBounds


@dataclass(frozen=True)
class PredictiveController(StepBounds):
    """Predictive step-size control (Gustafsson 1994; Hairer & Wanner, Solving ODEs II,
    IV.8, eq. (8.25)), as RADAU5 and RODAS run it and OrdinaryDiffEq.jl offers it.

    With `expo = 1/p` for a method of order p, after an accepted step with error `EEst`:
    the standard factor `q = EEst^expo / gamma`, and from the second accepted step on the
    predictive factor `qgus = (dtacc / dt) (EEst^2 / erracc)^expo / gamma`, where `dtacc` and
    `erracc` (at least 0.01) are the previous accepted step's size and error; the step
    shrinks by the larger of the two (both clamped to [1/qmax, 1/qmin]). The prediction sees
    an error that grows from step to step, as it does on the way into a fast transient,
    before a step is rejected for it; a PI controller only reacts after the fact. As in
    RADAU5 and RODAS, the step after a rejected one does not grow. A rejected step shrinks
    by the standard factor, by 10 when no step has been accepted yet.
    """

    def for_solver(self, solver) -> "PredictiveController":
        return self

    def start(self) -> ControllerState:
        return ControllerState(qold=1.0)

    def _standard(self, eest: float, order: int, qmax: float) -> float:
        return max(1 / qmax, min(1 / self.qmin, eest ** (1 / order) / self.gamma))

    def accept_factor(self, state: ControllerState, eest: float, dt: float,
                      order: int) -> float:
        """The factor q with dt_new = dt / q after an accepted step."""
        qmax = self.qmax_first_step if state.naccept == 0 else self.qmax
        q = self._standard(eest, order, qmax)
        if state.naccept > 0:
            qgus = abs(state.dtacc / dt) * (eest ** 2 / state.erracc) ** (1 / order) / self.gamma
            q = max(q, max(1 / qmax, min(1 / self.qmin, qgus)))
        if state.rejected:
            q = max(q, 1.0)
        if self.qsteady_min <= q <= self.qsteady_max:
            q = 1.0
        state.dtacc, state.erracc = dt, max(1e-2, eest)
        state.naccept += 1
        state.rejected = False
        return q

    def reject_factor(self, state: ControllerState, eest: float, order: int) -> float:
        """The factor q with dt_new = dt / q after a rejected step (q > 1)."""
        state.rejected = True
        if state.naccept == 0:
            return 10.0
        return self._standard(eest, order, self.qmax)
