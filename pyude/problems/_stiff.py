"""Stiff test problems from the Bari Test Set for IVP solvers (Mazzia & Magherini, 2008),
with the rates as parameters so that they can be batched, traced and differentiated."""

from __future__ import annotations

from .._problem import ODEProblem


def vdpol(u, p, t):
    """Van der Pol in the Test Set's mu-form: y1' = y2, y2' = mu (1 - y1^2) y2 - y1."""
    y1, y2 = u
    return [y2, p.mu * (1 - y1**2) * y2 - y1]


def vdpol_problem(mu=1e3, tspan=(0.0, 2000.0)) -> ODEProblem:
    return ODEProblem(vdpol, (2.0, 0.0), tspan, dict(mu=mu))


def hires(u, p, t):
    """HIRES: a plant's response to light (8 species)."""
    y1, y2, y3, y4, y5, y6, y7, y8 = u
    r = p.k * y6 * y8
    return [
        -1.71 * y1 + 0.43 * y2 + 8.32 * y3 + 0.0007,
        1.71 * y1 - 8.75 * y2,
        -10.03 * y3 + 0.43 * y4 + 0.035 * y5,
        8.32 * y2 + 1.71 * y3 - 1.12 * y4,
        -1.745 * y5 + 0.43 * y6 + 0.43 * y7,
        -r + 0.69 * y4 + 1.71 * y5 - 0.43 * y6 + 0.69 * y7,
        r - 1.81 * y7,
        -r + 1.81 * y7,
    ]


def hires_problem(tspan=(0.0, 321.8122)) -> ODEProblem:
    return ODEProblem(hires, (1.0, 0, 0, 0, 0, 0, 0, 0.0057), tspan, dict(k=280.0))


POLLU_RATES = dict(
    k1=0.35, k2=26.6, k3=1.23e4, k4=8.6e-4, k5=8.2e-4, k6=1.5e4, k7=1.3e-4, k8=2.4e4,
    k9=1.65e4, k10=9e3, k11=0.022, k12=1.2e4, k13=1.88, k14=1.63e4, k15=4.8e6, k16=3.5e-4,
    k17=0.0175, k18=1e8, k19=4.44e11, k20=1240.0, k21=2.1, k22=5.78, k23=0.0474,
    k24=1780.0, k25=3.12,
)


def pollu(u, p, t):
    """POLLU: Verwer's air-pollution model, 20 species and 25 reactions."""
    (y1, y2, y3, y4, y5, y6, y7, y8, y9, y10, y11, y12, y13, y14, y15, y16, y17, y18, y19,
     y20) = u
    r1, r2, r3 = p.k1 * y1, p.k2 * y2 * y4, p.k3 * y5 * y2
    r4, r5, r6 = p.k4 * y7, p.k5 * y7, p.k6 * y7 * y6
    r7, r8, r9 = p.k7 * y9, p.k8 * y9 * y6, p.k9 * y11 * y2
    r10, r11, r12 = p.k10 * y11 * y1, p.k11 * y13, p.k12 * y10 * y2
    r13, r14, r15 = p.k13 * y14, p.k14 * y1 * y6, p.k15 * y3
    r16, r17, r18 = p.k16 * y4, p.k17 * y4, p.k18 * y16
    r19, r20, r21 = p.k19 * y16, p.k20 * y17 * y6, p.k21 * y19
    r22, r23, r24, r25 = p.k22 * y19, p.k23 * y1 * y4, p.k24 * y19 * y1, p.k25 * y20
    return [
        -r1 - r10 - r14 - r23 - r24 + r2 + r3 + r9 + r11 + r12 + r22 + r25,
        -r2 - r3 - r9 - r12 + r1 + r21,
        -r15 + r1 + r17 + r19 + r22,
        -r2 - r16 - r17 - r23 + r15,
        -r3 + 2 * r4 + r6 + r7 + r13 + r20,
        -r6 - r8 - r14 - r20 + r3 + 2 * r18,
        -r4 - r5 - r6 + r13,
        r4 + r5 + r6 + r7,
        -r7 - r8,
        -r12 + r7 + r9,
        -r9 - r10 + r8 + r11,
        r9,
        -r11 + r10,
        -r13 + r12,
        r14,
        -r18 - r19 + r16,
        -r20,
        r20,
        -r21 - r22 - r24 + r23 + r25,
        -r25 + r24,
    ]


def pollu_problem(tspan=(0.0, 60.0)) -> ODEProblem:
    u0 = [0.0] * 20
    for i, v in {2: 0.2, 4: 0.04, 7: 0.1, 8: 0.3, 9: 0.01, 17: 0.007}.items():
        u0[i - 1] = v
    return ODEProblem(pollu, u0, tspan, dict(POLLU_RATES))
