"""Dense output inside one accepted step."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
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


def axpy(u: Tensor | None, alpha: float, coeffs, ks: list[Tensor]) -> Tensor:
    """u + alpha sum_j coeffs[j] ks[j] (no u: the sum alone) in one matrix product over the
    stacked stages. On small systems each torch call costs more than its arithmetic, and
    autograd records two nodes here instead of two per stage. `coeffs` is a tensor of the
    stages' dtype and device (a tableau's `stage_rows`), or numbers."""
    like = ks[0]
    if not isinstance(coeffs, Tensor):
        coeffs = torch.as_tensor(np.asarray(coeffs, dtype=np.float64), dtype=like.dtype,
                                 device=like.device)
    stacked = torch.stack(ks).reshape(len(ks), -1)
    if u is None:
        return (torch.mm(coeffs.reshape(1, -1), stacked) * float(alpha)).view_as(like)
    return torch.addmm(u.reshape(1, -1), coeffs.reshape(1, -1), stacked,
                       alpha=float(alpha)).view_as(u)


def hermite(rec: StepRecord, theta: float) -> Tensor:
    """Cubic Hermite interpolation from the end values and slopes of the step."""
    u0, u1, dt = rec.u0, rec.u1, rec.dt
    return ((1 - theta) * u0 + theta * u1 + theta * (theta - 1) * (
        (1 - 2 * theta) * (u1 - u0) + (theta - 1) * dt * rec.f0 + theta * dt * rec.f1))
