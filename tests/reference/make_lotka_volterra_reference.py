"""Regenerates the Lotka-Volterra reference value stored in tests/problems.py.

x' = 1.5 x - x y, y' = -3 y + x y, (x, y)(0) = (1, 1), evaluated at t = 10 with mpmath's
Taylor-series ODE integrator (mpmath.odefun) at 30 significant digits; a second run at
40 digits checks that the printed digits are converged. Takes a few minutes.
"""

import mpmath


def reference(dps: int):
    mpmath.mp.dps = dps
    f = mpmath.odefun(lambda t, u: [1.5 * u[0] - u[0] * u[1], -3 * u[1] + u[0] * u[1]],
                      0, [mpmath.mpf(1), mpmath.mpf(1)])
    return f(10)


if __name__ == "__main__":
    a = reference(30)
    b = reference(40)
    print("dps=30:", [mpmath.nstr(v, 25) for v in a])
    print("dps=40:", [mpmath.nstr(v, 25) for v in b])
    print("difference:", [mpmath.nstr(x - y, 5) for x, y in zip(a, b)])
