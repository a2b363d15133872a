"""Kvaerno5: Kvaerno's stiffly accurate fifth-order ESDIRK."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._sdirk import AbstractESDIRK, ESDIRKTableau

_G = 0.26
_a = np.array([
    [0, 0, 0, 0, 0, 0, 0],
    [_G, _G, 0, 0, 0, 0, 0],
    [0.13, 0.84033320996790809, _G, 0, 0, 0, 0],
    [0.22371961478320505, 0.47675532319799699, -0.06470895363112615, _G, 0, 0, 0],
    [0.16648564323248321, 0.1045001884159172, 0.03631482272098715, -0.13090704451073998,
     _G, 0, 0],
    [0.13855640231268224, 0, -0.04245337201752043, 0.02446657898003141,
     0.61943039072480676, _G, 0],
    [0.13659751177640291, 0, -0.05496908796538376, -0.04118626728321046,
     0.62993304899016403, 0.06962479448202728, _G],
])

_KVAERNO5 = ESDIRKTableau(
    a=_a, b=_a[-1].copy(),
    c=[0, 2 * _G, 1.230333209967908, 0.895765984350076, 0.436393609858648, 1, 1],
    # b_hat is the sixth row (a fourth-order solution at t + dt).
    b_err=np.append(_a[5, :6], 0.0) - _a[6],
)


@dataclass(frozen=True, repr=False)
class Kvaerno5(AbstractESDIRK):
    """Kvaerno5: order 5, embedded order 4, seven stages (one explicit), L-stable, stiffly
    accurate, Hermite dense output.

    `autodiff=False` takes the Jacobian by finite differences.

    Julia: `OrdinaryDiffEqSDIRK.Kvaerno5()`. Reference: A. Kvaerno, Singly diagonally
    implicit Runge-Kutta methods with an explicit first stage, BIT Numerical Mathematics 44
    (2004) 489-502.
    """

    autodiff: bool = True
    tableau = _KVAERNO5
    order = 5
    embedded_order = 4
