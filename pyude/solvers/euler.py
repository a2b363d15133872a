"""Euler's method."""

from __future__ import annotations

from dataclasses import dataclass

from ._erk import AbstractERK
from ._tableau import ButcherTableau, lower

_EULER = ButcherTableau(a=lower([]), b=[1.0], c=[0.0])


@dataclass(frozen=True, repr=False)
class Euler(AbstractERK):
    """Forward Euler: order 1, one stage, fixed step (`dt` required), Hermite dense output.

    Julia: `OrdinaryDiffEq.Euler()`. Reference: Hairer, Norsett & Wanner, Solving ODEs I, II.1.
    """

    tableau = _EULER
    order = 1
