"""Dense output inside one accepted step."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from torch import Tensor


@dataclass
class StepRecord:
    """What a step leaves behind for interpolation between t0 and t0 + dt."""

    t0: float
    dt: float
    u0: Tensor
    u1: Tensor
    f0: Tensor
    f1: Tensor | None
    stages: list[Tensor]
    rhs: Callable[[float, Tensor], Tensor] | None = None
    cache: dict = field(default_factory=dict)


def lincomb(coeffs, ks: list[Tensor]) -> Tensor | None:
    """sum_i coeffs[i] * ks[i], skipping zero coefficients; None when all are zero."""
    total = None
    for coeff, k in zip(coeffs, ks):
        if coeff != 0.0:
            term = float(coeff) * k
            total = term if total is None else total + term
    return total


def hermite(rec: StepRecord, theta: float) -> Tensor:
    """Cubic Hermite interpolation from the end values and slopes of the step."""
    u0, u1, dt = rec.u0, rec.u1, rec.dt
    return ((1 - theta) * u0 + theta * u1 + theta * (theta - 1) * (
        (1 - 2 * theta) * (u1 - u0) + (theta - 1) * dt * rec.f0 + theta * dt * rec.f1))
