"""Tsitouras 5(4) with its own fourth-order dense output."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._erk import AbstractERK
from ._tableau import ButcherTableau, DenseTableau, lower

_A = lower([
    [0.161],
    [-0.008480655492356989, 0.335480655492357],
    [2.8971530571054935, -6.359448489975075, 4.3622954328695815],
    [5.325864828439257, -11.748883564062828, 7.4955393428898365, -0.09249506636175525],
    [5.86145544294642, -12.92096931784711, 8.159367898576159, -0.071584973281401,
     -0.028269050394068383],
    [0.09646076681806523, 0.01, 0.4798896504144996, 1.379008574103742,
     -3.290069515436081, 2.324710524099774],
])
_B = _A[-1].copy()
# b_hat - b, as OrdinaryDiffEq's btilde.
_B_ERR = np.array([
    -0.00178001105222577714, -0.0008164344596567469, 0.007880878010261995,
    -0.1447110071732629, 0.5823571654525552, -0.45808210592918697, 0.015151515151515152,
])
# b_i(theta) = sum_j r_ij theta^j, j = 1..4 (Tsitouras 2011, section 4).
_POLY = np.array([
    [1.0, -2.763706197274826, 2.9132554618219126, -1.0530884977290216],
    [0.0, 0.13169999999999998, -0.2234, 0.1017],
    [0.0, 3.9302962368947516, -5.941033872131505, 2.490627285651253],
    [0.0, -12.411077166933676, 30.33818863028232, -16.548102889244902],
    [0.0, 37.50931341651104, -88.1789048947664, 47.37952196281928],
    [0.0, -27.896526289197286, 65.09189467479366, -34.87065786149661],
    [0.0, 1.5, -4.0, 2.5],
])

_TSIT5 = ButcherTableau(
    a=_A, b=_B, c=[0.0, 0.161, 0.327, 0.9, 0.9800255409045097, 1.0, 1.0],
    b_err=_B_ERR, dense=DenseTableau(poly=_POLY),
)


@dataclass(frozen=True, repr=False)
class Tsit5(AbstractERK):
    """Tsitouras 5/4: order 5, embedded order 4, seven stages with FSAL, adaptive, with
    its own fourth-order dense output. The usual first choice for non-stiff problems.

    Julia: `OrdinaryDiffEq.Tsit5()`. Reference: Ch. Tsitouras, Runge-Kutta pairs of order
    5(4) satisfying only the first column simplifying assumption, Computers & Mathematics
    with Applications 62 (2011) 770-775.
    """

    tableau = _TSIT5
    order = 5
    stability_size = 3.5068          # OrdinaryDiffEq's alg_stability_size
    embedded_order = 4
    dense_order = 4
