"""The scaled RMS norm every error test uses. Each trajectory of a batch is measured on its
own (Hairer's RMS over its components), and the batch takes the worst, so that a shared step
satisfies every trajectory's tolerance."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def scaled_rms(x: Tensor, scale) -> float:
    """The worst trajectory's sqrt(mean((x / scale)^2)) over the state axis, as a Python
    float (NaN if non-finite)."""
    with torch.no_grad():
        return float((x.detach() / scale).square().mean(dim=-1).sqrt().max())


def error_norm(err: Tensor, u0: Tensor, u1: Tensor, rtol, atol) -> float:
    """EEst of a trial step: `scaled_rms` of the error with scale atol + rtol max(|u0|, |u1|);
    NaN when the new state is not finite, so the step is refused. Written in few torch calls:
    on small systems each costs more than its arithmetic."""
    with torch.no_grad():
        size = u1.detach().abs()
        scale = torch.maximum(u0.detach().abs(), size).mul_(rtol).add_(atol)
        worst = torch.linalg.vector_norm(err.detach() / scale, dim=-1).amax()
        # An Inf in u1 gives an Inf scale and a zero ratio, so the state is tested too
        # (NaN propagates through both); one host sync for both numbers.
        worst, largest = torch.stack((worst, size.amax())).tolist()
    if not math.isfinite(largest):
        return math.nan
    return worst / math.sqrt(err.shape[-1])
