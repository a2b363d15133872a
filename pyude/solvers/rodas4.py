"""Rodas4: Hairer and Wanner's stiffly accurate fourth-order Rosenbrock method."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._rosenbrock import AbstractRosenbrock, RosenbrockTableau, rodas_dense

_A = np.array([
    [0, 0, 0, 0, 0, 0],
    [1.544, 0, 0, 0, 0, 0],
    [0.9466785280815826, 0.2557011698983284, 0, 0, 0, 0],
    [3.314825187068521, 2.896124015972201, 0.9986419139977817, 0, 0, 0],
    [1.221224509226641, 6.019134481288629, 12.53708332932087, -0.687886036105895, 0, 0],
    [1.221224509226641, 6.019134481288629, 12.53708332932087, -0.687886036105895, 1, 0],
])
_C = np.array([
    [0, 0, 0, 0, 0, 0],
    [-5.6688, 0, 0, 0, 0, 0],
    [-2.430093356833875, -0.2063599157091915, 0, 0, 0, 0],
    [-0.1073529058151375, -9.594562251023355, -20.47028614809616, 0, 0, 0],
    [7.496443313967647, -10.24680431464352, -33.99990352819905, 11.7089089320616, 0, 0],
    [8.083246795921522, -7.981132988064893, -31.52159432874371, 16.31930543123136,
     -6.058818238834054, 0],
])
_H = np.array([
    [10.12623508344586, -7.487995877610167, -34.80091861555747, -7.992771707568823,
     1.025137723295662, 0],
    [-0.6762803392801253, 6.087714651680015, 16.43084320892478, 24.76722511418386,
     -6.594389125716872, 0],
])
_B = np.append(_A[-1, :-1], 1.0)

_RODAS4 = RosenbrockTableau(
    A=_A, C=_C, gamma=0.25, c=[0, 0.386, 0.21, 0.63, 1, 1],
    d=[0.25, -0.1043, 0.1035, -0.0362, 0, 0], b=_B, b_err=np.eye(6)[5],
    dense=rodas_dense(_B, _H),
)


@dataclass(frozen=True, repr=False)
class Rodas4(AbstractRosenbrock):
    """Rodas4: order 4, embedded order 3, six stages, L-stable and stiffly accurate, with a
    stiff-aware third-order dense output.

    `autodiff=False` takes the Jacobian by finite differences.

    Julia: `OrdinaryDiffEqRosenbrock.Rodas4()`. Reference: E. Hairer and G. Wanner, Solving
    Ordinary Differential Equations II, 2nd ed., Springer (1996), section VI.4.
    """

    autodiff: bool = True
    tableau = _RODAS4
    order = 4
    embedded_order = 3
    dense_order = 3
