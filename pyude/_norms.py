"""Error norms. Each trajectory of a batch is measured on its own (Hairer's RMS over its
components), and the batch takes the worst, so that the shared step satisfies every
trajectory's tolerance."""

from __future__ import annotations

import torch
from torch import Tensor


def rms_per_trajectory(x: Tensor, scale: Tensor) -> Tensor:
    """sqrt(mean((x / scale)^2)) over the state axis; shape (*batch,)."""
    return (x / scale).square().mean(dim=-1).sqrt()


def scaled_rms(x: Tensor, scale) -> float:
    """The worst trajectory's scaled RMS norm, as a Python float (NaN if non-finite)."""
    return float(rms_per_trajectory(x, scale).max())


def error_norm(err: Tensor, u0: Tensor, u1: Tensor, rtol, atol) -> float:
    """EEst of a trial step; NaN when the new state is not finite, so the step is refused."""
    with torch.no_grad():
        e, a, b = err.detach(), u0.detach(), u1.detach()
        scale = atol + rtol * torch.maximum(a.abs(), b.abs())
        # 0 * sum(u1) is NaN exactly when u1 holds a NaN or an Inf: one host sync for both.
        return float(rms_per_trajectory(e, scale).max() + 0.0 * b.sum())
