"""The solver hierarchy. Every class is abstract or final; capabilities are marker bases."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Callable, ClassVar

from torch import Tensor

from ._dense import StepRecord

RHSFn = Callable[[float, Tensor], Tensor]


@dataclass
class StepResult:
    """A trial step: the new state, its error estimate (None for fixed-step methods),
    f at the new state when the method computed it anyway (FSAL), and the stages."""

    u1: Tensor
    err: Tensor | None
    f1: Tensor | None
    stages: list[Tensor]


class AbstractSolver(abc.ABC):
    """A one-step method: `step` advances by `dt`, `interpolate` evaluates inside a step."""

    order: ClassVar[int]

    @property
    @abc.abstractmethod
    def adaptive(self) -> bool:
        """Whether the method carries an error estimate for step-size control."""

    @abc.abstractmethod
    def step(self, rhs: RHSFn, t: float, u: Tensor, f0: Tensor, dt: float) -> StepResult:
        """Advance from (t, u), where f0 = f(t, u), to t + dt."""

    @abc.abstractmethod
    def interpolate(self, rec: StepRecord, theta: float) -> Tensor:
        """The state at t0 + theta * dt inside an accepted step, 0 <= theta <= 1."""

    @property
    def julia_name(self) -> str:
        """The same method in OrdinaryDiffEq.jl, as Julia source."""
        return f"{type(self).__name__}()"

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
