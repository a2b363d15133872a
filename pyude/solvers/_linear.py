"""Factorise a batch of iteration matrices W once, then apply W^-1 to many right-hand sides.

Small systems (the common stiff case: chemical kinetics, oscillators) are bound by eager
torch's per-call overhead, not by flops: `torch.linalg.lu_solve` costs about 27 us on a 3x3
system on a CPU, a matrix-vector product about 2 us. Up to `SMALL_N` unknowns W^-1 is
therefore formed once (from the LU factors, with partial pivoting) and every stage costs
one product; larger systems keep the LU factors and triangular solves.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

SMALL_N = 16

Solve = Callable[[Tensor], Tensor]


def factorise(W: Tensor) -> Solve | None:
    """A function b -> W^-1 b over the batch (b of shape (*batch, n)), or None when some W
    of the batch is singular."""
    if W.shape[-1] <= SMALL_N:
        inverse, info = torch.linalg.inv_ex(W)
        if bool(info.any()):
            return None
        if inverse.ndim == 2:
            return lambda b: b @ inverse.mT if b.ndim > 1 else inverse @ b
        return lambda b: (inverse @ b.unsqueeze(-1)).squeeze(-1)
    lu, pivots, info = torch.linalg.lu_factor_ex(W)
    if bool(info.any()):
        return None
    return lambda b: torch.linalg.lu_solve(lu, pivots, b.unsqueeze(-1)).squeeze(-1)
