import numpy as np
import pytest

import pyude

from helpers import ESDIRK, EXPLICIT, ROSENBROCK, ids, order_condition_residuals, rooted_trees


def test_rooted_tree_counts():
    # OEIS A000081: the number of rooted trees with n nodes.
    assert [len(rooted_trees(n)) for n in range(1, 8)] == [1, 1, 2, 4, 9, 20, 48]


@pytest.mark.parametrize("entry", EXPLICIT, ids=ids(EXPLICIT))
def test_row_sums_and_weights(entry):
    tab = entry.solver.tableau
    np.testing.assert_allclose(tab.a.sum(axis=1), tab.c, atol=1e-14)
    assert abs(tab.b.sum() - 1) < 1e-14
    if tab.b_err is not None:
        assert abs(tab.b_err.sum()) < 1e-14


@pytest.mark.parametrize("entry", EXPLICIT, ids=ids(EXPLICIT))
def test_order_conditions(entry):
    tab = entry.solver.tableau
    residuals = order_condition_residuals(tab.a, tab.b, entry.order)
    assert max(map(abs, residuals)) < 1e-13
    # ...and the method is not of higher order than it claims.
    higher = order_condition_residuals(tab.a, tab.b, entry.order + 1)
    assert max(map(abs, higher)) > 1e-6


@pytest.mark.parametrize("entry", [e for e in EXPLICIT if e.solver.adaptive],
                         ids=ids([e for e in EXPLICIT if e.solver.adaptive]))
def test_embedded_method_has_its_order(entry):
    solver = entry.solver
    residuals = order_condition_residuals(solver.tableau.a, solver.tableau.b_hat,
                                          solver.embedded_order)
    assert max(map(abs, residuals)) < 1e-13


def test_fsal_is_derived_from_the_coefficients():
    fsal = {e.id: e.solver.tableau.fsal for e in EXPLICIT}
    assert fsal == {"Euler()": False, "Midpoint()": False, "Heun()": False, "RK4()": False,
                    "BS3()": True, "DP5()": True, "Tsit5()": True, "Vern7()": False}


@pytest.mark.parametrize("entry", [e for e in EXPLICIT if e.solver.tableau.dense is not None],
                         ids=ids([e for e in EXPLICIT if e.solver.tableau.dense is not None]))
def test_dense_output_ends_on_the_step(entry):
    tab = entry.solver.tableau
    weights = tab.dense.weights(1.0)
    b = np.zeros_like(weights)
    b[: tab.stages] = tab.b
    np.testing.assert_allclose(weights, b, atol=1e-12)
    np.testing.assert_allclose(tab.dense.weights(0.0), 0.0, atol=0)
    extra = tab.dense.extra_a
    np.testing.assert_allclose(extra.sum(axis=1), tab.dense.extra_c, atol=1e-14)


def test_tableau_validation_rejects_bad_data():
    from pyude.solvers import ButcherTableau
    from pyude.solvers._tableau import lower

    with pytest.raises(ValueError, match="row sums of a"):
        ButcherTableau(a=lower([[0.5]]), b=[0.5, 0.5], c=[0.0, 1.0])
    with pytest.raises(ValueError, match="sum to .*not 1"):
        ButcherTableau(a=lower([[1.0]]), b=[0.5, 0.6], c=[0.0, 1.0])
    with pytest.raises(ValueError, match="summing to 0"):
        ButcherTableau(a=lower([[1.0]]), b=[0.5, 0.5], c=[0.0, 1.0], b_err=[0.1, 0.0])
    with pytest.raises(ValueError, match="strictly lower triangular"):
        ButcherTableau(a=[[0.0, 1.0], [1.0, 0.0]], b=[0.5, 0.5], c=[1.0, 1.0])


@pytest.mark.parametrize("entry", ESDIRK, ids=ids(ESDIRK))
def test_esdirk_order_conditions(entry):
    tab = entry.solver.tableau
    assert max(map(abs, order_condition_residuals(tab.a, tab.b, entry.order))) < 1e-13
    assert max(map(abs, order_condition_residuals(tab.a, tab.b, entry.order + 1))) > 1e-6
    b_hat = tab.b + tab.b_err
    residuals = order_condition_residuals(tab.a, b_hat, entry.solver.embedded_order)
    assert max(map(abs, residuals)) < 1e-13
    assert tab.stiffly_accurate and tab.a[0, 0] == 0


def test_esdirk_tableau_validation():
    from pyude.solvers import ESDIRKTableau

    good = pyude.KenCarp4.tableau
    with pytest.raises(ValueError, match="one diagonal value gamma"):
        bad = good.a.copy()
        bad[2, 2] = 0.3
        ESDIRKTableau(a=bad, b=good.b, c=bad.sum(axis=1), b_err=good.b_err)
    with pytest.raises(ValueError, match="row sums of a"):
        ESDIRKTableau(a=good.a, b=good.b, c=good.c + 0.1, b_err=good.b_err)
    with pytest.raises(ValueError, match="b must sum to 1"):
        ESDIRKTableau(a=good.a, b=good.b * 2, c=good.c, b_err=good.b_err)


@pytest.mark.parametrize("entry", ROSENBROCK, ids=ids(ROSENBROCK))
def test_rosenbrock_tableau_consistency(entry):
    """In standard form alpha = A Gamma (Gamma^-1 = I/gamma - C): its rows sum to c; the
    dense output starts at u0 and ends on u1; the error weights estimate a lower order."""
    tab = entry.solver.tableau
    s = tab.stages
    gamma_matrix = np.linalg.inv(np.eye(s) / tab.gamma - tab.C)
    np.testing.assert_allclose((tab.A @ gamma_matrix).sum(axis=1), tab.c, atol=1e-13)
    # sum_i m_i (Gamma)_i. = 1 is the first order condition in transformed form.
    assert (tab.b @ gamma_matrix).sum() == pytest.approx(1.0, abs=1e-13)
    np.testing.assert_allclose(tab.dense.weights(1.0), tab.b, atol=1e-12)
    np.testing.assert_allclose(tab.dense.weights(0.0), 0.0)
    assert np.abs(tab.b_err).sum() > 0


def test_rosenbrock_tableau_validation():
    from pyude.solvers import RosenbrockTableau

    good = pyude.Rodas4.tableau
    with pytest.raises(ValueError, match="stage times c"):
        RosenbrockTableau(A=good.A, C=good.C, gamma=good.gamma, c=good.c + 0.1, d=good.d,
                          b=good.b, b_err=good.b_err)
    with pytest.raises(ValueError, match="strictly lower triangular"):
        RosenbrockTableau(A=good.A.T, C=good.C, gamma=good.gamma, c=good.c, d=good.d,
                          b=good.b, b_err=good.b_err)
