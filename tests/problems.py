"""Test problems with exact or high-precision reference solutions, with their provenance."""

from __future__ import annotations

import math

import numpy as np

import pyude


def oscillator(u, p, t):
    x, y = u
    return [y, -x]


def oscillator_problem(tspan=(0.0, 20.0), u0=(1.0, 0.0)) -> pyude.ODEProblem:
    return pyude.ODEProblem(oscillator, u0, tspan)


def oscillator_exact(t: float, u0=(1.0, 0.0)) -> np.ndarray:
    c, s = math.cos(t), math.sin(t)
    return np.array([c * u0[0] + s * u0[1], -s * u0[0] + c * u0[1]])


# Lotka-Volterra (1.5, 1, 3, 1), u0 = (1, 1), at t = 10. Computed with mpmath.odefun (Taylor
# series) at 30 and at 40 significant digits, which agree to 2e-32; regenerate with
# tests/reference/make_lotka_volterra_reference.py.
LOTKA_VOLTERRA_T10 = np.array([1.026344767575089319138687, 0.9096910781360416175482459])


def scipy_style_error(y: np.ndarray, y_true: np.ndarray, rtol: float, atol: float) -> float:
    """scipy's test metric: RMS of (y - y_true) / (atol + rtol |y_true|)."""
    return float(np.sqrt(np.mean(((y - y_true) / (atol + rtol * np.abs(y_true))) ** 2)))
