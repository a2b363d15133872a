"""Error norms. Each trajectory of a batch is measured on its own (Hairer's RMS over its
components), and the batch takes the worst, so that the shared step satisfies every
trajectory's tolerance."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

# dtypes numpy holds as they are (bfloat16 has no numpy twin)
HOST_DTYPES = (torch.float32, torch.float64)


def rms_per_trajectory(x: Tensor, scale: Tensor) -> Tensor:
    """sqrt(mean((x / scale)^2)) over the state axis; shape (*batch,)."""
    return (x / scale).square().mean(dim=-1).sqrt()


def scaled_rms(x: Tensor, scale) -> float:
    """The worst trajectory's scaled RMS norm, as a Python float (NaN if non-finite)."""
    return float(rms_per_trajectory(x, scale).max())


def error_norm(err: Tensor, u0: Tensor, u1: Tensor, rtol, atol) -> float:
    """EEst of a trial step; NaN when the new state is not finite, so the step is refused.
    Written in few torch calls: on small systems each costs more than its arithmetic. On the
    CPU, where the result is a host number anyway, numpy does it in a fifth of the time."""
    if err.device.type == "cpu" and err.dtype in HOST_DTYPES:
        return _error_norm_host(err, u0, u1, rtol, atol)
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


def to_host(x):
    """A CPU tensor as the numpy array sharing its memory; numbers pass through."""
    return x.detach().numpy() if isinstance(x, Tensor) else x


def scaled_rms_on_host(x: np.ndarray, scale: np.ndarray) -> float:
    """`scaled_rms` for numpy arrays, in few numpy calls (np.mean is a Python function that
    costs about 10 us on a small state)."""
    ratio = x / scale
    return math.sqrt(float((ratio * ratio).sum(axis=-1).max()) / x.shape[-1])


def _error_norm_host(err: Tensor, u0: Tensor, u1: Tensor, rtol, atol) -> float:
    e, size = to_host(err), np.abs(to_host(u1))
    with np.errstate(all="ignore"):            # Inf and NaN are answered below, not warned
        scale = np.maximum(np.abs(to_host(u0)), size) * to_host(rtol) + to_host(atol)
        worst = scaled_rms_on_host(e, scale)
    largest = float(size.max())
    if not math.isfinite(largest) or not math.isfinite(worst):
        return math.nan
    return worst
