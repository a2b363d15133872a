"""KenCarp4: Kennedy and Carpenter's ARK4(3)6L[2]SA, its implicit (ESDIRK) half."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction as F

import numpy as np

from ._sdirk import AbstractESDIRK, ESDIRKTableau

_G = F(1, 4)
_A = [
    [0],
    [_G, _G],
    [F(8611, 62500), -F(1743, 31250), _G],
    [F(5012029, 34652500), -F(654441, 2922500), F(174375, 388108), _G],
    [F(15267082809, 155376265600), -F(71443401, 120774400), F(730878875, 902184768),
     F(2285395, 8070912), _G],
    [F(82889, 524892), 0, F(15625, 83664), F(69875, 102672), -F(2260, 8211), _G],
]
_a = np.zeros((6, 6))
for _i, _row in enumerate(_A):
    _a[_i, : len(_row)] = [float(x) for x in _row]

_KENCARP4 = ESDIRKTableau(
    a=_a, b=_a[-1].copy(),
    c=[0, 0.5, 83 / 250, 31 / 50, 17 / 20, 1],
    b_err=[-31666707 / 9881966720, 0, 256875 / 105007616, 2768025 / 128864768,
           -169839 / 3864644, 5247 / 225920],
)


@dataclass(frozen=True, repr=False)
class KenCarp4(AbstractESDIRK):
    """KenCarp4: order 4, embedded order 3, six stages (one explicit), L-stable, stiffly
    accurate, Hermite dense output. Used here as a plain stiff solver (the implicit half of
    the additive pair).

    `autodiff=False` takes the Jacobian by finite differences.

    Julia: `OrdinaryDiffEqSDIRK.KenCarp4()`. Reference: C. A. Kennedy and M. H. Carpenter,
    Additive Runge-Kutta schemes for convection-diffusion-reaction equations, Appl. Numer.
    Math. 44 (2003) 139-181.
    """

    autodiff: bool = True
    tableau = _KENCARP4
    order = 4
    embedded_order = 3
