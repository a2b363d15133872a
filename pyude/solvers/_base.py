"""The solver hierarchy. Every class is abstract or final; capabilities are marker bases."""

from __future__ import annotations

import abc
import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, ClassVar

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
    # False when an implicit method could not complete the step (singular matrix, Newton
    # divergence); the loop then retries with a smaller step.
    ok: bool = True
    # The method that took the step, when a composite chose among several (for dense output).
    method: "AbstractSolver | None" = None


class AbstractSolver(abc.ABC):
    """A one-step method: `step` advances by `dt`, `interpolate` evaluates inside a step."""

    order: ClassVar[int]
    # The PI gains (beta1, beta2) where OrdinaryDiffEq's differ from its 0.7/p, 0.4/p.
    controller_betas: ClassVar[tuple[float, float] | None] = None
    # Whether a step solves linear systems (W = I - gamma dt J).
    implicit: ClassVar[bool] = False
    # The radius of the stability region along the negative real axis (OrdinaryDiffEq's
    # alg_stability_size), for explicit methods that can detect stiffness in an AutoSwitch.
    stability_size: ClassVar[float | None] = None

    @property
    @abc.abstractmethod
    def adaptive(self) -> bool:
        """Whether the method carries an error estimate for step-size control."""

    def init_cache(self, rtol: Any, atol: Any) -> Any:
        """Per-solve state (Jacobians, factorisations, work counters); None if the method
        keeps none."""
        return None

    @abc.abstractmethod
    def step(self, rhs: RHSFn, t: float, u: Tensor, f0: Tensor, dt: float,
             cache: Any = None) -> StepResult:
        """Advance from (t, u), where f0 = f(t, u), to t + dt."""

    def derivative_at(self, rhs: RHSFn, t: float, u: Tensor, cache: Any) -> Tensor:
        """f(t, u) at the end of an accepted step whose method did not compute it (FSAL);
        it starts the next step."""
        return rhs(t, u)

    def order_now(self, cache: Any) -> int:
        """The order the step-size controller should assume for the next step."""
        return self.order

    def on_accept(self, cache: Any, u: Tensor, result: StepResult, dt: float) -> float:
        """Called after each accepted step; returns a factor for the next step size."""
        return 1.0

    @abc.abstractmethod
    def interpolate(self, rec: StepRecord, theta: float) -> Tensor:
        """The state at t0 + theta * dt inside an accepted step, 0 <= theta <= 1."""

    def with_autodiff(self, autodiff: bool) -> "AbstractSolver":
        """The same solver, every other setting kept, taking its Jacobians by automatic
        differentiation (True) or finite differences (False); methods without Jacobians
        return themselves."""
        return self

    @property
    def julia_name(self) -> str:
        """The same method in OrdinaryDiffEq.jl, as Julia source."""
        return f"{type(self).__name__}()"

    def __repr__(self) -> str:
        changed = [f"{f.name}={getattr(self, f.name)!r}" for f in dataclasses.fields(self)
                   if getattr(self, f.name) != f.default] if dataclasses.is_dataclass(self) else []
        return f"{type(self).__name__}({', '.join(changed)})"


class AbstractImplicitSolver(AbstractSolver):
    """A stiff (linearly or fully implicit) method: adaptive, with a Jacobian taken by
    automatic differentiation unless `autodiff` is False (then by central differences) or the
    problem supplies `jac`."""

    embedded_order: ClassVar[int]
    dense_order: ClassVar[int] = 3
    implicit: ClassVar[bool] = True
    autodiff: bool

    def with_autodiff(self, autodiff: bool) -> "AbstractImplicitSolver":
        return dataclasses.replace(self, autodiff=bool(autodiff))

    @property
    def adaptive(self) -> bool:
        return True
