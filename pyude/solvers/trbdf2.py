"""TR-BDF2: the trapezoidal rule followed by BDF2, as a three-stage ESDIRK."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ._sdirk import AbstractESDIRK, ESDIRKTableau

_G = 2 - math.sqrt(2)          # the trapezoidal stage ends at t + gamma dt
_D = 1 - math.sqrt(2) / 2      # = gamma / 2, the diagonal
_W = math.sqrt(2) / 4

_TRBDF2 = ESDIRKTableau(
    a=[[0, 0, 0], [_D, _D, 0], [_W, _W, _D]],
    b=[_W, _W, _D],
    c=[0, _G, 1],
    # b_hat - b with Hosea and Shampine's third-order b_hat = ((1-w)/3, (3w+1)/3, d/3)
    b_err=[(1 - math.sqrt(2)) / 3, 1 / 3, (math.sqrt(2) - 2) / 3],
)


@dataclass(frozen=True, repr=False)
class TRBDF2(AbstractESDIRK):
    """TR-BDF2: order 2, embedded order 3, three stages (one explicit), L-stable, stiffly
    accurate, Hermite dense output. A robust low-accuracy stiff solver.

    `autodiff=False` takes the Jacobian by finite differences.

    Julia: `OrdinaryDiffEqSDIRK.TRBDF2()`. Reference: M. E. Hosea and L. F. Shampine,
    Analysis and implementation of TR-BDF2, Appl. Numer. Math. 20 (1996) 21-37.
    """

    autodiff: bool = True
    tableau = _TRBDF2
    order = 2
    embedded_order = 3
