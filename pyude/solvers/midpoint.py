"""The explicit midpoint method."""

from __future__ import annotations

from dataclasses import dataclass

from ._erk import AbstractERK
from ._tableau import ButcherTableau, lower

_MIDPOINT = ButcherTableau(a=lower([[0.5]]), b=[0.0, 1.0], c=[0.0, 0.5])


@dataclass(frozen=True, repr=False)
class Midpoint(AbstractERK):
    """Explicit midpoint rule: order 2, two stages, fixed step (`dt` required), Hermite
    dense output.

    Julia: `OrdinaryDiffEq.Midpoint()` (which can also adapt its step; pyude's is fixed-step).
    Reference: Hairer, Norsett & Wanner, Solving ODEs I, II.1.
    """

    tableau = _MIDPOINT
    order = 2
