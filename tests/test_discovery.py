"""Equation discovery and closing the loop."""

import numpy as np
import pytest
import sympy
import torch

import pyude
from pyude.problems import lotka_volterra, lotka_volterra_ude

X_, Y_ = sympy.symbols("x y", real=True)


def _interaction_data(noise=0.0, seed=0, n=60):
    rng = np.random.default_rng(seed)
    X = rng.uniform(0.2, 2.0, (n, 2))
    Y = np.stack([-0.9 * X[:, 0] * X[:, 1], 0.8 * X[:, 0] * X[:, 1]], axis=1)
    return X, Y + noise * rng.standard_normal(Y.shape)


@pytest.mark.parametrize("noise", [0.0, 1e-3])
def test_sindy_recovers_the_interaction_terms(noise):
    X, Y = _interaction_data(noise)
    result = pyude.discover(X, Y, names=["x", "y"], backend="sindy")
    nn1, nn2 = result.selected["nn1"], result.selected["nn2"]
    assert nn1.complexity == 1 and nn2.complexity == 1
    assert nn1.expr.free_symbols == {X_, Y_} and nn1.expr.is_Mul
    assert float(nn1.expr.coeff(X_ * Y_)) == pytest.approx(-0.9, rel=1e-2)
    assert float(nn2.expr.coeff(X_ * Y_)) == pytest.approx(0.8, rel=1e-2)
    # the sweep keeps richer candidates for a refit through the ODE to choose among
    assert len(result.candidates["nn1"]) > 1
    assert "x y" in nn1.latex().replace("x \\cdot y", "x y") or "x" in nn1.latex()


def test_discovered_model_refits_through_the_ode():
    t, data = _lv_refit_data()

    ude = lotka_volterra_ude
    model = pyude.discovery.discovered_model(ude, ["x", "y"], dict(alpha=1.3, delta=1.8),
                                             {"nn1": -0.85 * X_ * Y_, "nn2": 0.75 * X_ * Y_})
    assert model.coefficients == ["c1", "c2"]
    loss = pyude.discovery.refit(model, t, data)
    assert loss < 1e-8
    assert model.p["c1"] == pytest.approx(-0.9, rel=1e-4)
    assert model.p["c2"] == pytest.approx(0.8, rel=1e-4)
    # the discovered model is an ordinary model: it traces and prints as Julia
    src = pyude.symbolic.to_julia(pyude.symbolic.trace(model.f, 2, model.p))
    assert "function rhs(u, p, t)" in src


_lv_ude = lotka_volterra_ude


def test_discovered_model_takes_plain_symbols_and_refuses_foreign_ones():
    # sympy.symbols("x y") without assumptions are other symbols than the traced states
    plain = [sympy.sympify("-0.9*x*y"), sympy.sympify("0.8*x*y")]
    model = pyude.discovery.discovered_model(_lv_ude, ["x", "y"], dict(alpha=1.3, delta=1.8),
                                             plain)
    du = model.f(torch.tensor([1.0, 2.0], dtype=torch.float64),
                 {k: torch.tensor(v, dtype=torch.float64) for k, v in model.p.items()}, 0.0)
    assert [float(v) for v in du] == pytest.approx([1.3 - 1.8, -3.6 + 1.6])
    with pytest.raises(ValueError, match="uses z, which is not a state of the model"):
        pyude.discovery.discovered_model(_lv_ude, ["x", "y"], dict(alpha=1.3, delta=1.8),
                                         [sympy.sympify("-0.9*x*z"), sympy.sympify("x")])


@pytest.mark.parametrize("X,Y,match", [
    (np.ones((10, 2)), np.ones((9, 2)), "same samples"),
    (np.ones((3, 2)), np.ones((3, 2)), "at least 5 samples"),
    (np.full((10, 2), np.nan), np.ones((10, 2)), "must be finite"),
])
def test_bad_inputs(X, Y, match):
    with pytest.raises(ValueError, match=match):
        pyude.discover(X, Y, backend="sindy")


def test_unknown_backend_and_name_counts():
    X, Y = _interaction_data()
    with pytest.raises(ValueError, match="unknown discovery backend 'eureqa'"):
        pyude.discover(X, Y, backend="eureqa")
    with pytest.raises(ValueError, match="1 names for 2 inputs"):
        pyude.discover(X, Y, names=["x"], backend="sindy")


def test_auto_takes_sindy_without_julia():
    if pyude.julia.available():
        pytest.skip("Julia is installed here")
    X, Y = _interaction_data()
    assert pyude.discover(X, Y, names=["x", "y"]).backend == "sindy"


def test_operon_backend_needs_pyoperon():
    import importlib.util
    if importlib.util.find_spec("pyoperon") is not None:
        pytest.skip("pyoperon is installed; its own test covers it")
    X, Y = _interaction_data()
    with pytest.raises(ImportError, match="pip install pyude\\[operon\\]"):
        pyude.discover(X, Y, backend="operon")


def test_pysr_adapter_asks_for_a_repeatable_search_and_reads_the_hall_of_fame(monkeypatch):
    """PySR itself needs Julia; this holds the adapter to PySR's documented interface:
    `PySRRegressor(..., parallelism="serial", deterministic=True, random_state=seed)`,
    `fit(X, y, variable_names=...)`, and `equations_` rows with `complexity`, `loss` and
    `sympy_format` (a sympy expression in plain symbols of the variable names)."""
    import sys
    import types
    from collections import namedtuple

    Row = namedtuple("Row", "complexity loss sympy_format")
    x, y = sympy.symbols("x y")                    # PySR's symbols carry no assumptions
    fronts = {0: [Row(1, 0.5, 0.3 * x), Row(3, 1e-6, -0.9 * x * y)],
              1: [Row(3, 1e-6, 0.8 * x * y)]}
    calls = []

    class FakeRegressor:
        def __init__(self, **settings):
            self.settings = settings

        def fit(self, X, y_, variable_names=None):
            calls.append((self.settings, variable_names))
            column = len(calls) - 1
            self.equations_ = types.SimpleNamespace(itertuples=lambda: iter(fronts[column]))
            return self

    monkeypatch.setitem(sys.modules, "pysr", types.SimpleNamespace(PySRRegressor=FakeRegressor))
    monkeypatch.setattr(pyude.julia, "init", lambda: None)
    X, Y = _interaction_data()
    result = pyude.discover(X, Y, names=["x", "y"], backend="pysr", seed=7, niterations=3)
    settings, names = calls[0]
    assert names == ["x", "y"] and len(calls) == 2
    assert settings["parallelism"] == "serial" and settings["deterministic"] is True
    assert settings["random_state"] == 7 and settings["niterations"] == 3
    nn1 = result.selected["nn1"]
    assert nn1.expr.free_symbols == {X_, Y_}       # pyude's real state symbols
    assert float(nn1.expr.coeff(X_ * Y_)) == -0.9
    assert result.candidates["nn2"][0].expr == 0.8 * X_ * Y_


@pytest.mark.parametrize("names,match", [
    (["x", "x"], "input name 'x' appears twice"),
    (["x y", "z"], "input 'x y' is not a usable name"),
    (["S", "I"], "input 'S' is sympy's singleton registry"),
    (["s", "I"], "input 'I' is the imaginary unit in sympy"),
    (["x", "end"], "input 'end' is reserved in Julia"),
    (["t", "y"], "input 't' is the time in pyude's models"),
    (["nn1", "y"], "input 'nn1' is a network output's symbol"),
    (["__import__('os').getcwd()", "y"], "is not a usable name"),
    ([1, "y"], "input must be strings"),
], ids=["duplicate", "space", "S", "I", "julia", "time", "nn", "code", "not-a-string"])
def test_discover_refuses_names_that_would_collide(names, match):
    X, Y = _interaction_data()
    with pytest.raises((ValueError, TypeError), match=match):
        pyude.discover(X, Y, names=names, backend="sindy")


def test_the_library_is_built_from_symbols_in_pysindys_order():
    from pyude.discovery._sindy import library
    X = np.array([[1.0, 2.0], [3.0, 5.0]])
    theta, exprs = library(X, ["a", "b"], degree=2)
    a, b = sympy.symbols("a b", real=True)
    assert exprs == [sympy.Integer(1), a, b, a**2, a * b, b**2]
    np.testing.assert_allclose(theta[1], [1, 3, 5, 9, 15, 25])


def test_discovered_model_takes_no_text_and_validates_its_names():
    with pytest.raises(TypeError, match="must be sympy expressions .* got str"):
        pyude.discovery.discovered_model(_lv_ude, ["x", "y"], dict(alpha=1.3, delta=1.8),
                                         ["-0.9*x*y", "0.8*x*y"])
    with pytest.raises(ValueError, match="parameter 'x' is also a state's name"):
        pyude.discovery.discovered_model(_lv_ude, ["x", "y"], dict(x=1.3, delta=1.8),
                                         [X_ * Y_, X_ * Y_])
    with pytest.raises(ValueError, match="state 'E' is Euler's number"):
        pyude.discovery.discovered_model(_lv_ude, ["E", "y"], dict(alpha=1.3, delta=1.8),
                                         [X_ * Y_, X_ * Y_])


def test_discovered_coefficients_take_names_no_parameter_has():
    def ude(u, p, t, nn):
        x, y = u
        m1, m2 = nn(u)
        return [p.c1 * x + m1, -p.delta * y + m2]
    model = pyude.discovery.discovered_model(ude, ["x", "y"], dict(c1=1.3, delta=1.8),
                                             [-0.9 * X_ * Y_, 0.8 * X_ * Y_])
    assert model.coefficients == ["c2", "c3"] and model.p["c1"] == 1.3


def _one_state_refit(term):
    """x' = term, to be refit to exp(-t) on [0, 2]: (model, t, data)."""
    def ude(u, p, t, nn):
        (m,) = nn(u)
        return [m]

    t = torch.linspace(0.0, 2.0, 21, dtype=torch.float64)
    model = pyude.discovery.discovered_model(ude, ["x"], {}, [term])
    return model, t, torch.exp(-t)[:, None]


@pytest.mark.parametrize("backend", ["native", "numba"])
def test_a_refit_that_blows_up_gives_up_at_once_and_says_why(backend):
    """x' = c x^2 from x = 1 with c = 4 leaves any plausible region before t = 0.25; so
    does it at the solver's step limit without the bound. On torch the bound stops the
    first solve as it is crossed; a compiled solve runs on to its failure in milliseconds
    and its steps then say where it left."""
    import time
    model, t, data = _one_state_refit(4.0 * X_**2)
    start = time.perf_counter()
    assert pyude.discovery.refit(model, t, data, bound=10.0, backend=backend) == float("inf")
    assert model.failure.startswith("left the plausible region (a state reached")
    assert "beyond 10) at t = 0.2" in model.failure
    assert pyude.discovery.refit(model, t, data, maxiters=50, backend=backend) == float("inf")
    assert model.failure == "needed more than 50 steps"
    assert time.perf_counter() - start < 10


def test_pysr_text_and_foreign_operon_text_are_refused():
    from pyude.discovery._gp import _in_symbols, _operon_expr
    x = sympy.Symbol("x", real=True)
    with pytest.raises(TypeError, match="where a sympy expression was expected"):
        _in_symbols("__import__('os')", {"x": x})
    assert _operon_expr("(-0.9 * X1) * X1 + 1.5e-3", {"X1": x}) == -0.9 * x**2 + 0.0015
    with pytest.raises(ValueError, match="pyoperon returned a model pyude cannot read"):
        _operon_expr("__import__('os').getcwd()", {"X1": x})


def test_sindy_finds_candidates_when_the_features_are_collinear():
    """Three states that nearly sum to one (an epidemic's s, i, r along a fitted
    trajectory): the library's columns are nearly collinear, the dense fit's coefficients
    huge; the sweep still finds the term (before, it found nothing)."""
    rng = np.random.default_rng(0)
    s, i = rng.uniform(0.1, 0.6, 80), rng.uniform(0.05, 0.3, 80)
    X = np.stack([s, i, 1 - s - i + 1e-4 * rng.standard_normal(80)], axis=1)
    Y = np.stack([-0.6 * s * i, 0.6 * s * i], axis=1) + 1e-4 * rng.standard_normal((80, 2))
    result = pyude.discover(X, Y, names=["s", "i", "r"], backend="sindy")
    S_, I_ = sympy.symbols("s i", real=True)
    assert all(result.candidates[k] for k in ("nn1", "nn2"))
    assert any(eq.expr.free_symbols == {S_, I_} and eq.complexity == 1
               for eq in result.candidates["nn1"])


def _lv_refit_data():
    t = torch.linspace(0.0, 3.0, 31, dtype=torch.float64)
    u0 = torch.tensor([0.44249296, 4.6280594], dtype=torch.float64)
    data = pyude.solve(pyude.ODEProblem(lotka_volterra, u0, (0.0, 3.0),
                                        dict(alpha=1.3, beta=0.9, gamma=1.8, delta=0.8)),
                       pyude.Vern7(), saveat=t, rtol=1e-10, atol=1e-10).u
    return t, data


def test_a_term_library_holds_every_candidate_in_one_model():
    from pyude.discovery import TermLibrary
    pools = [[-0.8 * X_ * Y_, 0.1 * X_**2 - 0.9 * X_ * Y_, sympy.Float(0.3),
              0.5 * sympy.sqrt(X_), 0.2 / X_],
             [0.7 * X_ * Y_, 0.2 * sympy.exp(0.5 * X_), 0.3 * sympy.log(Y_)]]
    library = TermLibrary(lotka_volterra_ude, ["x", "y"], dict(alpha=1.3, delta=1.8), pools)
    # x*y, x**2, 1 for nn1; x*y for nn2. Not exp(0.5 x), which holds its own coefficient,
    # nor sqrt(x), 1/x or log(y): held at zero they would still be NaN where the states
    # leave their domain, and 0 * NaN would break every candidate of the library
    assert library.size == 4
    assert library.p == dict(alpha=1.3, delta=1.8, k1=0.0, k2=0.0, k3=0.0, k4=0.0)

    def model(nn1, nn2):
        return pyude.discovery.discovered_model(lotka_volterra_ude, ["x", "y"],
                                                dict(alpha=1.3, delta=1.8), [nn1, nn2],
                                                library=library)
    rich = model(pools[0][1], pools[1][0])
    assert rich.library is library and set(rich.slots.values()) == {"k1", "k2", "k4"}
    f, values, names = rich.solve_form()
    assert f is library.f and values[names["c1"]] == rich.p["c1"]
    assert model(pools[0][0], pools[1][1]).library is None     # exp(0.5 x): its own model
    assert model(pools[0][3], pools[1][0]).library is None     # sqrt(x): its own model
    with pytest.raises(TypeError, match="must be sympy expressions"):
        TermLibrary(lotka_volterra_ude, ["x", "y"], dict(alpha=1.3, delta=1.8),
                    [["x*y"], []])                  # text is refused, never parsed
    # the library's right-hand side with the other terms at zero is the candidate's
    u = torch.tensor([0.7, 1.9], dtype=torch.float64)
    as_tensors = {k: torch.tensor(v, dtype=torch.float64) for k, v in values.items()}
    own = {k: torch.tensor(v, dtype=torch.float64) for k, v in rich.p.items()}
    assert torch.allclose(torch.stack(f(u, pyude.Params(as_tensors), 0.0)),
                          torch.stack(rich.f(u, pyude.Params(own), 0.0)), rtol=1e-15)


@pytest.mark.parametrize("backend", ["native", "numba"])
def test_a_refit_through_the_library_equals_the_candidates_own(backend):
    from pyude.discovery import TermLibrary
    t, data = _lv_refit_data()
    pools = [[-0.85 * X_ * Y_, 0.1 * Y_], [0.75 * X_ * Y_, 0.2 * X_**2]]
    library = TermLibrary(lotka_volterra_ude, ["x", "y"], dict(alpha=1.3, delta=1.8), pools)
    found = []
    for lib in (library, None):
        model = pyude.discovery.discovered_model(
            lotka_volterra_ude, ["x", "y"], dict(alpha=1.3, delta=1.8),
            [pools[0][0], pools[1][0]], library=lib)
        loss = pyude.discovery.refit(model, t, data, backend=backend, rtol=1e-8, atol=1e-8)
        found.append((loss, model.p["c1"], model.p["c2"]))
    assert found[0][1:] == pytest.approx(found[1][1:], rel=1e-6)
    assert found[0][1:] == pytest.approx((-0.9, 0.8), rel=1e-4)


def test_a_search_compiles_one_model_for_all_its_candidates():
    """Every candidate of a structure search is solved through its library: the compiled
    backend builds one model (one source, compiled once) for the search, however many
    candidates it refits."""
    from types import SimpleNamespace

    from pyude import pipeline
    from pyude.backends.numba import _model as compiled
    spec = pipeline.PROBLEMS["lotka_volterra"]
    t, _, data = pipeline.make_data(spec, 0.01, seed=0)
    exprs = {"nn1": [-0.9 * X_ * Y_, 0.1 * X_**2, -0.9 * X_ * Y_ + 0.01 * Y_],
             "nn2": [0.8 * X_ * Y_, 0.05 * Y_**2]}
    candidates = {k: [SimpleNamespace(expr=e) for e in v] for k, v in exprs.items()}
    before = set(compiled._COMPILED)
    events = []
    chosen, _, _ = pipeline.select_structure(spec, candidates, t, data, backend="numba",
                                             on_trial=events.append)
    assert pipeline.structure_recovered(spec, chosen)
    assert len(events) >= 4 and chosen.library is not None
    new = {compiled._COMPILED[key].source for key in set(compiled._COMPILED) - before}
    assert len(new) == 1


def test_a_torch_refit_whose_start_fails_inside_the_bound_is_not_solved_again(monkeypatch):
    """On torch the bound is checked at every call of f: a start that fails without
    crossing it did not leave the region, and is not solved again to find out."""
    from pyude.discovery import _refit
    monkeypatch.setattr(_refit, "_left_region", lambda *a, **k: pytest.fail("solved again"))
    model, t, data = _one_state_refit(-1.0 * X_)
    assert pyude.discovery.refit(model, t, data, bound=10.0, maxiters=5,
                                 backend="native") == float("inf")
    assert model.failure == "needed more than 5 steps"
