"""The classical fourth-order Runge-Kutta method."""

from __future__ import annotations

from dataclasses import dataclass

from ._erk import AbstractERK
from ._tableau import ButcherTableau, lower

_RK4 = ButcherTableau(
    a=lower([[0.5], [0.0, 0.5], [0.0, 0.0, 1.0]]),
    b=[1 / 6, 1 / 3, 1 / 3, 1 / 6],
    c=[0.0, 0.5, 0.5, 1.0],
)


@dataclass(frozen=True, repr=False)
class RK4(AbstractERK):
    """Classical Runge-Kutta: order 4, four stages, fixed step (`dt` required), Hermite
    dense output.

    Julia: `OrdinaryDiffEq.RK4()` (which can also adapt its step; pyude's is fixed-step).
    Reference: Kutta (1901); Hairer, Norsett & Wanner, Solving ODEs I, II.1.
    """

    tableau = _RK4
    order = 4
