"""Rosenbrock23: Shampine and Reichelt's L-stable ode23s pair."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._rosenbrock import AbstractRosenbrock, RosenbrockTableau, from_standard
from ._tableau import DenseTableau


def _tableau() -> RosenbrockTableau:
    d = 1 / (2 + math.sqrt(2))
    c32 = 6 + math.sqrt(2)
    # Standard form of ode23s: k3 (only for the error estimate) is evaluated at u1, and its
    # time-derivative term is dt T (coefficient 1), as in OrdinaryDiffEq.
    std = from_standard(
        gamma=d,
        alpha=[[0, 0, 0], [0.5, 0, 0], [0, 1, 0]],
        Gamma=[[d, 0, 0], [-d, d, 0], [d * (c32 - 2), -c32 * d, d]],
        b=[0, 1, 0], b_err=[1 / 6, -1 / 3, 1 / 6], d=[d, 0.0, 1 - 2 * d])
    # Dense output u0 + dt (th(1-th) k1 + th(th-2d) k2) / (1-2d), with dt k = Gamma^-1 U.
    g = std.pop("gamma_inv")
    poly = (np.outer(g[0], [1.0, -1.0]) + np.outer(g[1], [-2 * d, 1.0])) / (1 - 2 * d)
    return RosenbrockTableau(**std, dense=DenseTableau(poly=poly))


@dataclass(frozen=True, repr=False)
class Rosenbrock23(AbstractRosenbrock):
    """Rosenbrock23: order 2 (embedded order 3 for the error estimate), L-stable, two stages
    plus one FSAL stage, with its own stiff-aware second-order dense output. For low accuracy
    on stiff problems, and the stiff half of automatic switching.

    `autodiff=False` takes the Jacobian by finite differences.

    Julia: `OrdinaryDiffEqRosenbrock.Rosenbrock23()`. Reference: L. F. Shampine and
    M. W. Reichelt, The MATLAB ODE Suite, SIAM J. Sci. Comput. 18 (1997) 1-22.
    """

    autodiff: bool = True
    tableau = _tableau()
    order = 2
    embedded_order = 3
    dense_order = 2
