"""The built-in models."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from .. import ops
from .._problem import ODEProblem
from ._stiff import hires, hires_problem, pollu, pollu_problem, vdpol, vdpol_problem


def lotka_volterra(u, p, t):
    """Predator-prey: x' = alpha x - beta x y, y' = -gamma y + delta x y."""
    x, y = u
    return [p.alpha * x - p.beta * x * y, -p.gamma * y + p.delta * x * y]


def lotka_volterra_ude(u, p, t, nn):
    """Lotka-Volterra as a universal differential equation (the UDE paper's set-up): the
    growth alpha x and the decay -delta y are known physics, the network's two outputs stand
    for the unknown interaction terms."""
    x, y = u
    m1, m2 = nn(u)
    return [p.alpha * x + m1, -p.delta * y + m2]


def lotka_volterra_problem(u0=(1.0, 1.0), tspan=(0.0, 10.0), p=None) -> ODEProblem:
    """SciML's standard set-up: (alpha, beta, gamma, delta) = (1.5, 1, 3, 1), u0 = (1, 1)."""
    p = dict(alpha=1.5, beta=1.0, gamma=3.0, delta=1.0) if p is None else p
    return ODEProblem(lotka_volterra, u0, tspan, p)


def van_der_pol(u, p, t):
    """Van der Pol oscillator in Lienard form: x' = y, y' = mu ((1 - x^2) y - x)."""
    x, y = u
    return [y, p.mu * ((1 - x**2) * y - x)]


def van_der_pol_problem(mu=1.0, u0=(2.0, 0.0), tspan=(0.0, 6.3)) -> ODEProblem:
    return ODEProblem(van_der_pol, u0, tspan, dict(mu=mu))


def rober(u, p, t):
    """Robertson's chemical kinetics (stiff): rates k1, k2, k3."""
    y1, y2, y3 = u
    return [
        -p.k1 * y1 + p.k3 * y2 * y3,
        p.k1 * y1 - p.k2 * y2**2 - p.k3 * y2 * y3,
        p.k2 * y2**2,
    ]


def rober_problem(tspan=(0.0, 1e5)) -> ODEProblem:
    """The classic rates k1 = 0.04, k2 = 3e7, k3 = 1e4 from u0 = (1, 0, 0)."""
    return ODEProblem(rober, (1.0, 0.0, 0.0), tspan, dict(k1=0.04, k2=3e7, k3=1e4))


def exponential_growth(u, p, t):
    """u' = lam u, with exact solution u0 exp(lam t)."""
    return [p.lam * c for c in u]


def exponential_growth_problem(u0=(0.5,), tspan=(0.0, 1.0), lam=1.01) -> ODEProblem:
    return ODEProblem(exponential_growth, u0, tspan, dict(lam=lam))


def sine_ode(u, p, t):
    """u' = sin(u), with exact solution 2 acot(exp(-t) cot(u0 / 2))."""
    (x,) = u
    return [ops.sin(x)]


def sine_ode_problem(u0=0.5, tspan=(0.0, 5.0)) -> ODEProblem:
    return ODEProblem(sine_ode, [u0], tspan)


def sine_ode_exact(u0: float, t: float) -> float:
    return 2 * math.atan(math.tan(u0 / 2) * math.exp(t))


@dataclass(frozen=True)
class Builtin:
    model: Callable
    factory: Callable[[], ODEProblem]


BUILTIN: dict[str, Builtin] = {
    "vdpol": Builtin(vdpol, vdpol_problem),
    "hires": Builtin(hires, hires_problem),
    "pollu": Builtin(pollu, pollu_problem),
    "lotka_volterra": Builtin(lotka_volterra, lotka_volterra_problem),
    "van_der_pol": Builtin(van_der_pol, van_der_pol_problem),
    "rober": Builtin(rober, rober_problem),
    "exponential_growth": Builtin(exponential_growth, exponential_growth_problem),
    "sine_ode": Builtin(sine_ode, sine_ode_problem),
}
