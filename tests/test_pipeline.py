"""The discovery pipeline runs end to end and writes its report (short schedules here; the
structure-recovery study is a benchmark, not a unit test)."""

import json

import numpy as np
import pytest
import sympy

from pyude import pipeline


@pytest.mark.parametrize("problem", ["lotka_volterra", "cubic_friction"])
def test_pipeline_writes_a_report(problem, tmp_path):
    pytest.importorskip("pysindy")
    results = pipeline.run(problem, noise=0.01, seed=0, out=tmp_path, collocation_iters=30,
                           adam_iters=5, lbfgs_iters=0, refit_iters=5, per_target=2,
                           progress=False)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["problem"] == problem and saved["seed"] == 0
    assert len(saved["discovered"]["equations"]) == len(pipeline.PROBLEMS[problem].state_names)
    report = (tmp_path / "report.md").read_text()
    assert "## Discovered model" in report and "oracle" in report
    assert set(results["extrapolation"]) == {"discovered", "oracle", "window"}
    assert isinstance(results["recovered"], bool) and "Structure recovered" in report
    pytest.importorskip("matplotlib")
    for png in ("fit.png", "terms.png", "extrapolation.png"):
        assert (tmp_path / png).stat().st_size > 1000


def test_pipeline_refuses_bad_data(tmp_path):
    with pytest.raises(ValueError, match="strictly increasing"):
        pipeline.run("lotka_volterra", t=[0.0, 2.0, 1.0], data=[[1, 1], [1, 1], [1, 1]],
                     out=tmp_path, progress=False)


def test_given_data_are_fitted_without_a_truth(tmp_path):
    """Data from outside: the problem supplies the known physics; no oracle, no truth."""
    pytest.importorskip("pysindy")
    spec = pipeline.PROBLEMS["lotka_volterra"]
    t, _, data = pipeline.make_data(spec, 0.01, seed=3)
    results = pipeline.run("lotka_volterra", t=t, data=data, out=tmp_path,
                           collocation_iters=30, adam_iters=3, lbfgs_iters=0, refit_iters=5,
                           per_target=2, progress=False, plots=False)
    assert "oracle" not in results and "recovered" not in results
    assert "from the given data" in (tmp_path / "report.md").read_text()


def test_a_failed_fit_stops_with_a_message_and_the_report_says_so(tmp_path, monkeypatch):
    def diverging(*args, **kwargs):
        raise RuntimeError("adam: the loss diverged to inf at iteration 3")
    monkeypatch.setattr(pipeline._run, "fit", diverging)
    with pytest.raises(pipeline.PipelineError, match="the fit stage failed: adam: the loss "
                                                     "diverged"):
        pipeline.run("lotka_volterra", out=tmp_path, progress=False)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["failed"]["stage"] == "fit"
    assert "Failed in the fit stage" in (tmp_path / "report.md").read_text()


def test_data_with_the_wrong_number_of_states_are_refused(tmp_path):
    with pytest.raises(ValueError, match="3 states per observation but the problem "
                                         "'lotka_volterra' has 2"):
        pipeline.run("lotka_volterra", t=[0.0, 1.0, 2.0], data=[[1, 1, 1]] * 3, out=tmp_path)


def test_shortlist_sets_aside_the_terms_of_the_known_physics():
    """nn1 enters dx/dt beside alpha*x, nn2 enters dy/dt beside -delta*y: candidates with
    c*x (for nn1) or c*y (for nn2) would only re-estimate alpha or delta."""
    pytest.importorskip("pysindy")
    from pyude.discovery import discover
    spec = pipeline.PROBLEMS["lotka_volterra"]
    t, truth, data = pipeline.make_data(spec, 0.01, seed=0)
    X = truth.numpy()
    x, y = X.T
    Y = np.stack([-0.9 * x * y + 0.2 * x, 0.8 * x * y - 0.1 * y], axis=1)
    found = discover(X, Y, names=["x", "y"], backend="sindy", degree=2)
    short = pipeline.shortlist(found, X, Y, spec, t, data)
    for target, known in (("nn1", "x"), ("nn2", "y")):
        term_sets = [{str(k) for k in eq.expr.as_coefficients_dict()} for eq in short[target]]
        assert term_sets and all(known not in terms for terms in term_sets)
        assert {"x*y"} in term_sets


def test_an_extra_term_must_win_by_the_parsimony_margin():
    """On this noise realisation (seed 5, 0.5% noise) a small x^2 term beside x*y lowers the
    BIC by about 5: plain BIC keeps it, the default margin of 6 does not."""
    from types import SimpleNamespace
    spec = pipeline.PROBLEMS["lotka_volterra"]
    t, _, data = pipeline.make_data(spec, 0.005, seed=5)
    X_, Y_ = sympy.symbols("x y", real=True)
    exprs = {"nn1": [-0.86 * X_ * Y_, 0.007 * X_**2 - 0.9 * X_ * Y_], "nn2": [0.86 * X_ * Y_]}
    candidates = {k: [SimpleNamespace(expr=e) for e in v] for k, v in exprs.items()}
    plain, _, tried = pipeline.select_structure(spec, candidates, t, data, parsimony=0.0)
    assert len(plain.coefficients) == 3 and len(tried) == 2
    margin = tried[1][0] - tried[0][0]
    assert 0 < margin < 6
    chosen, _, _ = pipeline.select_structure(spec, candidates, t, data)
    assert pipeline.structure_recovered(spec, chosen)
