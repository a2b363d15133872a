"""Dormand-Prince 5(4) with its own fourth-order dense output."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._erk import AbstractERK
from ._tableau import ButcherTableau, DenseTableau, lower

_A = lower([
    [1 / 5],
    [3 / 40, 9 / 40],
    [44 / 45, -56 / 15, 32 / 9],
    [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729],
    [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656],
    [35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84],
])
_B = _A[-1].copy()
_B_HAT = np.array([5179 / 57600, 0.0, 7571 / 16695, 393 / 640, -92097 / 339200,
                   187 / 2100, 1 / 40])
# Shampine's dense-output weights (Hairer's contd5 "d" coefficients).
_D = np.array([-12715105075 / 11282082432, 0.0, 87487479700 / 32700410799,
               -10690763975 / 1880347072, 701980252875 / 199316789632,
               -1453857185 / 822651844, 69997945 / 29380423])


def _dense_poly() -> np.ndarray:
    """u(theta) = u0 + dt [theta K1 + theta(1-theta) K2 + theta^2(1-theta) K3
    + theta^2(1-theta)^2 K4], K1 = b, K2 = e1 - b, K3 = 2b - e1 - e7, K4 = d,
    expanded into powers of theta."""
    e1, e7 = np.eye(7)[0], np.eye(7)[6]
    k1, k2, k3, k4 = _B, e1 - _B, 2 * _B - e1 - e7, _D
    return np.stack([k1 + k2, -k2 + k3 + k4, -k3 - 2 * k4, k4], axis=1)


_DP5 = ButcherTableau(
    a=_A, b=_B, c=[0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0],
    b_err=_B_HAT - _B, dense=DenseTableau(poly=_dense_poly()),
)


@dataclass(frozen=True, repr=False)
class DP5(AbstractERK):
    """Dormand-Prince 5/4 (dopri5): order 5, embedded order 4, seven stages with FSAL,
    adaptive, with Shampine's fourth-order dense output.

    Julia: `OrdinaryDiffEq.DP5()`. References: J. R. Dormand and P. J. Prince, A family of
    embedded Runge-Kutta formulae, J. Comp. Appl. Math. 6 (1980) 19-26; L. F. Shampine,
    Interpolation for Runge-Kutta methods, SIAM J. Numer. Anal. 22 (1985) 1014-1027.
    """

    tableau = _DP5
    order = 5
    stability_size = 3.3066          # OrdinaryDiffEq's alg_stability_size
    # OrdinaryDiffEq's DP5 gains: beta2 = 0.04, beta1 = 1/5 - 3/4 beta2 (Hairer's DOPRI5)
    controller_betas = (0.17, 0.04)
    embedded_order = 4
    dense_order = 4
