"""Heun's method (the explicit trapezoidal rule)."""

from __future__ import annotations

from dataclasses import dataclass

from ._erk import AbstractERK
from ._tableau import ButcherTableau, lower

_HEUN = ButcherTableau(a=lower([[1.0]]), b=[0.5, 0.5], c=[0.0, 1.0])


@dataclass(frozen=True, repr=False)
class Heun(AbstractERK):
    """Heun's method: order 2, two stages, fixed step (`dt` required), Hermite dense output.

    Julia: `OrdinaryDiffEq.Heun()` (which can also adapt its step; pyude's is fixed-step).
    Reference: Hairer, Norsett & Wanner, Solving ODEs I, II.1.
    """

    tableau = _HEUN
    order = 2
