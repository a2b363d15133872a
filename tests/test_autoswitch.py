"""Automatic stiffness detection and switching, and the default solver."""

import numpy as np
import pytest

import pyude
from problems import ROBER_T1E11, VDPOL_MU1000_T2000, mescd
from pyude import problems as P


def _names(sol):
    return [type(m).__name__ for m in sol.methods]


def test_default_solver_is_tsit5_switching_to_rosenbrock23():
    sol = pyude.solve(P.lotka_volterra_problem(), rtol=1e-6, atol=1e-8)
    assert repr(sol.solver) == "AutoSwitch(Tsit5(), Rosenbrock23())"
    assert set(_names(sol)) == {"Tsit5"} and sol.stats.njacs == 0


def test_default_solver_below_rtol_1e_6_is_vern7_switching_to_rodas5p():
    # OrdinaryDiffEq's default chooses by tolerance the same way for small systems.
    sol = pyude.solve(P.lotka_volterra_problem(), rtol=1e-8, atol=1e-8)
    assert repr(sol.solver) == "AutoSwitch(Vern7(), Rodas5P())"
    assert set(_names(sol)) == {"Vern7"}
    stiff = pyude.solve(P.rober_problem(tspan=(0.0, 1e11)), rtol=1e-7, atol=1e-11)
    assert _names(stiff)[-1] == "Rodas5P"
    assert mescd(stiff.u[-1].numpy(), ROBER_T1E11, 1e-7, 1e-11) >= 6


def test_switches_to_the_stiff_method_on_rober():
    sol = pyude.solve(P.rober_problem(tspan=(0.0, 1e11)), pyude.AutoTsit5(pyude.Rodas5P()),
                      rtol=1e-6, atol=1e-10)
    names = _names(sol)
    assert names[0] == "Tsit5" and names[-1] == "Rodas5P"
    assert sol.stats.naccept < 2000        # Tsit5 alone stops at maxiters long before 1e11
    assert mescd(sol.u[-1].numpy(), ROBER_T1E11, 1e-6, 1e-10) >= 5


def test_switches_both_ways_on_van_der_pol():
    """VDPOL alternates slow stiff phases with fast non-stiff jumps."""
    sol = pyude.solve(P.vdpol_problem(), pyude.AutoTsit5(pyude.Rodas5P()), rtol=1e-6,
                      atol=1e-6)
    names = _names(sol)
    to_stiff = sum(a == "Tsit5" and b == "Rodas5P" for a, b in zip(names, names[1:]))
    to_nonstiff = sum(a == "Rodas5P" and b == "Tsit5" for a, b in zip(names, names[1:]))
    assert to_stiff >= 2 and to_nonstiff >= 1
    assert mescd(sol.u[-1].numpy(), VDPOL_MU1000_T2000, 1e-6, 1e-6) >= 5


def test_dense_output_follows_the_method_of_each_step():
    sol = pyude.solve(P.rober_problem(tspan=(0.0, 100.0)), pyude.AutoTsit5(pyude.Rodas4()),
                      rtol=1e-8, atol=1e-12)
    ref = pyude.solve(P.rober_problem(tspan=(0.0, 100.0)), pyude.Rodas5P(), rtol=1e-10,
                      atol=1e-14, saveat=[0.5, 5.0, 50.0])
    np.testing.assert_allclose(sol([0.5, 5.0, 50.0]).numpy(), ref.u.numpy(), rtol=1e-5,
                               atol=1e-12)


def test_autoswitch_validates_its_methods():
    with pytest.raises(ValueError, match="non-stiff method of an automatic switch"):
        pyude.AutoSwitch(pyude.BS3(), pyude.Rodas5P())
    with pytest.raises(ValueError, match="stiff method of an automatic switch must be"):
        pyude.AutoSwitch(pyude.Tsit5(), pyude.Vern7())
