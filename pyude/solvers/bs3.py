"""Bogacki-Shampine 3(2)."""

from __future__ import annotations

from dataclasses import dataclass

from ._erk import AbstractERK
from ._tableau import ButcherTableau, lower

_BS3 = ButcherTableau(
    a=lower([[1 / 2], [0.0, 3 / 4], [2 / 9, 1 / 3, 4 / 9]]),
    b=[2 / 9, 1 / 3, 4 / 9, 0.0],
    c=[0.0, 1 / 2, 3 / 4, 1.0],
    b_err=[7 / 24 - 2 / 9, 1 / 4 - 1 / 3, 1 / 3 - 4 / 9, 1 / 8],
)


@dataclass(frozen=True, repr=False)
class BS3(AbstractERK):
    """Bogacki-Shampine 3/2: order 3, embedded order 2, four stages with FSAL, adaptive,
    Hermite dense output.

    Julia: `OrdinaryDiffEq.BS3()`. Reference: P. Bogacki and L. F. Shampine, A 3(2) pair
    of Runge-Kutta formulas, Appl. Math. Lett. 2 (1989) 321-325.
    """

    tableau = _BS3
    order = 3
    embedded_order = 2
