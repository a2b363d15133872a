"""The automatic initial step: Hairer's algorithm as DifferentialEquations.jl runs it."""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

from .._norms import scaled_rms


def initial_dt(rhs: Callable[[float, Tensor], Tensor], t0: float, u0: Tensor, f0: Tensor,
               tdir: float, order: int, rtol, atol, dtmax: float, dtmin: float) -> float:
    """A first step size from the size of u0, f(u0) and an estimate of f's variation.

    Hairer, Norsett & Wanner, Solving ODEs I, II.4: d0 = |u0|, d1 = |f0| (scaled norms),
    h0 = d0/d1/100, one Euler step of h0 to estimate d2 = |f1 - f0| / h0, then
    h1 = (0.01 / max(d1, d2))^(1/(order+1)), and the step is min(100 h0, h1, dtmax).
    """
    with torch.no_grad():
        u0d, f0d = u0.detach(), f0.detach()
        scale = atol + rtol * u0d.abs()
        d0 = scaled_rms(u0d, scale)
        d1 = scaled_rms(f0d, scale)
        small = max(dtmin, 1e-6)
        if not math.isfinite(d1):
            return tdir * small
        h0 = small if (d0 < 1e-5 or d1 < 1e-5) else 0.01 * d0 / d1
        h0 = min(h0, dtmax)
        f1 = rhs(t0 + tdir * h0, u0d + tdir * h0 * f0d).detach()
        d2 = scaled_rms(f1 - f0d, scale) / h0
        big = max(d1, d2)
        if not math.isfinite(big):
            return tdir * max(dtmin, h0 * 1e-3)
        if big <= 1e-15:
            h1 = max(1e-6, h0 * 1e-3)
        else:
            h1 = 10.0 ** (-(2.0 + math.log10(big)) / (order + 1))
        return tdir * max(dtmin, min(100 * h0, h1, dtmax))
