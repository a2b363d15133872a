"""Simplified Newton iteration for the implicit stages of (E)SDIRK methods.

Stage equation, in OrdinaryDiffEq's form: find z with  z = dt f(t_i, tmp + gamma z),  where
tmp collects the earlier stages. Each iteration solves W dz = dt f(tmp + gamma z) - z with
W = I - gamma dt J, reusing one LU factorisation of W (J possibly from an earlier step).

Convergence control follows Hairer & Wanner (Solving ODEs II, IV.8): with the scaled norm
|dz| and rate theta = |dz_k| / |dz_k-1|, stop when eta |dz| <= kappa, eta = theta/(1-theta);
fail as soon as theta > 1 or when the predicted error after the remaining iterations is still
too large. A correction below the state's round-off ends the iteration as converged before any
rate is read from it: there the rate is a ratio of round-off (OrdinaryDiffEq's "precision
limit" in its nlsolve!). A failure is never a warning: the step is redone with a fresh
Jacobian or a smaller dt.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from .._norms import scaled_rms

KAPPA = 0.01
MAX_ITERS = 10


@dataclass
class NewtonResult:
    z: Tensor
    converged: bool
    iterations: int


def solve_stage(residual: Callable[[Tensor], Tensor], solve_w: Callable[[Tensor], Tensor],
                z0: Tensor, scale: Tensor, eta_old: float, min_iterations: int = 1,
                floor: float = 0.0) -> tuple[NewtonResult, float]:
    """Newton on g(z) = residual(z) = dt f(tmp + gamma z) - z from the guess z0.

    `solve_w` applies W^-1; `scale` is atol + rtol |u|. Returns the result and the eta to
    start the next stage with. With `min_iterations=2` (W from an earlier step's Jacobian)
    no iterate is accepted before a convergence rate has been measured: a stale W can make
    the corrections small while the residual is not (Van der Pol after its jump: J taken
    mid-jump kept the fast variable frozen and the error estimate, filtered through that
    W, near zero, for steps of 200 time units).

    `floor` is the scaled norm of the state's round-off (eps |u| in the norm of `scale`): a
    correction no larger, once `min_iterations` are done, is converged, and eta is not read
    from it. Corrections that small have no measurable rate: on Van der Pol, Kvaerno5's last
    stage starts from the previous one (both at t + dt) some 1e-12 away, and the rate of two
    such corrections is a ratio of round-off, often above 1, which failed the step and took
    a new Jacobian whenever the round-off fell that way."""
    z = z0
    eps = torch.finfo(z0.dtype).eps
    eta = max(eta_old, eps) ** 0.8
    previous = None
    for k in range(1, MAX_ITERS + 1):
        dz = solve_w(residual(z))
        z = z + dz
        ndz = scaled_rms(dz, scale)
        if ndz != ndz or ndz == float("inf"):
            return NewtonResult(z, False, k), eta_old
        if k >= min_iterations and ndz <= floor:
            return NewtonResult(z, True, k), eta
        if previous is not None:
            theta = ndz / previous if previous > 0 else 0.0
            if theta >= 1.0:
                return NewtonResult(z, False, k), eta_old
            if theta ** (MAX_ITERS - k) / (1 - theta) * ndz > KAPPA:
                return NewtonResult(z, False, k), eta_old
            eta = theta / (1 - theta)
        if ndz == 0.0 or (k >= min_iterations and eta * ndz <= KAPPA):
            return NewtonResult(z, True, k), eta
        previous = ndz
    return NewtonResult(z, False, MAX_ITERS), eta_old
