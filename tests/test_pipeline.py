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
                           per_target=2, progress=False)
    assert "oracle" not in results and "recovered" not in results
    assert "from the given data" in (tmp_path / "report.md").read_text()
    # a held-out check by default: the last 20% kept out of the fit
    held = results["holdout"]
    assert held["window"] == [pytest.approx(2.5), pytest.approx(3.0)]
    assert held["observations"] == 6 and set(held) >= {"discovered", "network", "noise_level"}
    assert results["status"] == "done" and results["structures_tried"]
    assert results["fit"]["noise_mse"] > 0 and results["fit"]["mse_over_noise"] > 0
    report = (tmp_path / "report.md").read_text()
    assert "## Held-out check" in report and "for reference (a first guess" in report
    pytest.importorskip("matplotlib")
    assert (tmp_path / "fit.png").stat().st_size > 1000
    assert not (tmp_path / "extrapolation.png").exists()


@pytest.mark.parametrize("above,starts", [(float("inf"), 1), (0.0, 3)])
def test_a_fit_far_above_the_noise_starts_again_and_says_so(above, starts, tmp_path,
                                                            monkeypatch):
    """A fit that ends above three times the noise estimate (a poor local minimum) is tried
    from two more network initialisations, the best kept, and the report says how many."""
    pytest.importorskip("pysindy")
    from pyude.pipeline import _run
    monkeypatch.setattr(_run, "_RESTART_ABOVE", above)
    results = pipeline.run("lotka_volterra", noise=0.01, seed=0, out=tmp_path,
                           collocation_iters=30, adam_iters=3, lbfgs_iters=0, refit_iters=5,
                           per_target=2, progress=False, plots=False)
    assert results["fit"]["starts"] == starts
    said = "the best of 3 network initialisations" in (tmp_path / "report.md").read_text()
    assert said == (starts == 3)


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


def test_pipeline_is_there_after_a_plain_import_pyude_and_python_dash_m_runs():
    import subprocess
    import sys
    code = ("import runpy, sys, pyude; "
            "print(pyude.pipeline.run.__name__, pyude.pipeline.PROBLEMS['lotka_volterra'].degree); "
            "sys.argv = ['pyude', '--version']; runpy.run_module('pyude', run_name='__main__')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and out.stdout.split() == ["run", "2", "pyude", "0.1.0"]


@pytest.mark.parametrize("options,match", [
    (dict(noise=-1.0), r"noise must be a fraction from 0 to 1 .* got -1.0"),
    (dict(noise=float("nan")), "noise must be a fraction from 0 to 1 .* got nan"),
    (dict(noise=0.01, t=[0.0, 1.0, 2.0], data=[[1, 1]] * 3), "with your own data .* leave it out"),
    (dict(holdout=0.7), "holdout must be a fraction from 0 to 0.5"),
    (dict(degree=0), "degree must be a whole number from 1 to 6"),
    (dict(per_target=0), "per_target must be a whole number >= 1"),
    (dict(adam_iters=-5), "adam_iters must be a whole number of iterations >= 0"),
    (dict(backend="sindy"), "runs on the native backend or.*got backend='sindy' .* regression="),
    (dict(t=[0.0, 1.0, 2.0]), "give both t and data"),
    (dict(t=list(range(20)), data=[[1.0, 1.0]] * 20, holdout=0.05),
     "holding out 5% of 20 observations leaves 19 to fit and 1 to check"),
], ids=["negative-noise", "nan-noise", "noise-with-data", "holdout", "degree", "per-target",
        "adam-iters", "backend", "t-without-data", "too-few-held-out"])
def test_options_out_of_range_are_refused_before_any_work(options, match, tmp_path):
    with pytest.raises(ValueError, match=match):
        pipeline.run("lotka_volterra", out=tmp_path / "r", progress=False, **options)
    assert not (tmp_path / "r").exists()


def test_an_existing_report_is_not_overwritten_without_force(tmp_path, monkeypatch):
    (tmp_path / "report.md").write_text("my report")
    with pytest.raises(ValueError, match="already holds a report \\(report.md\\); pass "
                                         "--force"):
        pipeline.run("lotka_volterra", out=tmp_path, progress=False)
    assert (tmp_path / "report.md").read_text() == "my report"
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="the report folder .*file is a file"):
        pipeline.run("lotka_volterra", out=tmp_path / "file", progress=False)

    def diverging(*args, **kwargs):
        raise RuntimeError("diverged")
    monkeypatch.setattr(pipeline._run, "fit", diverging)
    with pytest.raises(pipeline.PipelineError):
        pipeline.run("lotka_volterra", out=tmp_path, force=True, progress=False)
    assert "Failed in the fit stage" in (tmp_path / "report.md").read_text()


def test_an_unwritable_folder_is_refused(tmp_path):
    import os
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="cannot write the report into .*file/r: Not a "
                                         "directory"):
        pipeline.run("lotka_volterra", out=tmp_path / "file" / "r", progress=False)
    if os.geteuid() == 0:
        pytest.skip("root writes anywhere")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(ValueError, match="cannot write the report into .*locked"):
        pipeline.run("lotka_volterra", out=locked, progress=False)


def test_an_interrupted_run_leaves_what_it_did(tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(pipeline._run, "fit", interrupted)
    with pytest.raises(KeyboardInterrupt):
        pipeline.run("lotka_volterra", out=tmp_path, progress=False)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["status"] == "interrupted" and saved["failed"]["stage"] == "fit"
    assert "Interrupted in the fit stage" in (tmp_path / "report.md").read_text()


def test_an_internal_error_keeps_its_traceback(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        return 1 / 0
    monkeypatch.setattr(pipeline._run, "fit", broken)
    with pytest.raises(pipeline.InternalError, match="internal error in the fit stage: "
                                                     "ZeroDivisionError") as info:
        pipeline.run("lotka_volterra", out=tmp_path, progress=False)
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    assert "Traceback" in json.loads((tmp_path / "results.json").read_text())["failed"]["message"]


@pytest.mark.parametrize("names,known,match", [
    (["S", "I"], {}, "state 'S' is sympy's singleton registry"),
    (["x", "x"], {}, "state name 'x' appears twice"),
    (["x", "y"], {"x": 1.0}, "parameter 'x' is also a state's name"),
])
def test_problem_names_are_checked_once(names, known, match):
    with pytest.raises(ValueError, match=match):
        pipeline.DiscoveryProblem("mine", lambda u, p, t, nn: nn(u), known, names, 2)


@pytest.mark.parametrize("text,match", [
    ("def broken(:\n", r"is not valid Python: invalid syntax \(line 1\)"),
    ("raise RuntimeError('no licence')\n", "raised RuntimeError while being imported: "
                                           "no licence"),
])
def test_a_problem_file_that_does_not_import_is_refused(text, match, tmp_path):
    (tmp_path / "mine.py").write_text(text)
    with pytest.raises(ValueError, match=match):
        pipeline.load_problem(f"{tmp_path}/mine.py:PROBLEM")


@pytest.mark.parametrize("text,match", [
    ("", "is empty: a CSV needs a header row"),
    ("t,x,y\n", r"has a header \(t, x, y\) but no observations"),
    ("t,x,y\n0,1,1\n1,1,one\n", "line 3, column 'y': 'one' is not a number"),
    ("t,x,y\n0,1\n", "line 2: 2 cells for the header's 3 columns"),
    ("t,x y,z\n0,1,1\n", "the column 'x y' is not a usable name"),
    ("t,S,I\n0,1,1\n", "the column 'S' is sympy's singleton registry"),
], ids=["empty", "header-only", "non-numeric", "short-row", "space", "sympy-name"])
def test_bad_csv_files_are_refused_with_where(text, match, tmp_path):
    (tmp_path / "obs.csv").write_text(text)
    with pytest.raises(ValueError, match=match):
        pipeline.load_data(tmp_path / "obs.csv")


def test_a_candidate_that_blows_up_is_abandoned_and_recorded():
    """A spurious +4 x^2 in the prey's equation makes the solution blow up within the data's
    span: its refit gives up at once, the search goes on and says so."""
    from types import SimpleNamespace

    from pyude.pipeline._selection import budget_for
    spec = pipeline.PROBLEMS["lotka_volterra"]
    t, _, data = pipeline.make_data(spec, 0.01, seed=0)
    X_, Y_ = sympy.symbols("x y", real=True)
    exprs = {"nn1": [4.0 * X_**2, -0.9 * X_ * Y_], "nn2": [0.8 * X_ * Y_]}
    candidates = {k: [SimpleNamespace(expr=e) for e in v] for k, v in exprs.items()}
    events = []
    chosen, _, tried = pipeline.select_structure(spec, candidates, t, data,
                                                 budget=budget_for(data, 100),
                                                 on_trial=events.append)
    assert pipeline.structure_recovered(spec, chosen) and len(tried) == 1
    assert [bool(e["abandoned"]) for e in events] == [True, False]
    assert events[0]["abandoned"].startswith("left the plausible region")
    assert events[1]["best"]["equations"] == [str(e) for e in chosen.network_terms()]


def test_a_discovered_model_much_worse_than_the_network_is_flagged():
    from pyude.pipeline._run import _warnings
    spec = pipeline.PROBLEMS["cubic_friction"]
    assert _warnings(spec, 1.5e-3, 1e-3, 1e-3) == []
    (poor_network,) = _warnings(spec, 1e-4, 1e-3, 1e-3)
    assert poor_network.startswith("the network fits the data 10.0 times worse than the "
                                   "discovered model")
    (warning,) = _warnings(spec, 0.1, 1e-3, 1e-3)
    assert warning.startswith("the discovered model fits the data 100.0 times worse than "
                              "the network")
    assert "library is too small for the unknown terms (degree 3: try --degree 4)" in warning


@pytest.mark.parametrize("problem,noise", [("lotka_volterra", 0.01),
                                           ("cubic_friction", 0.05)])
def test_the_noise_estimate_is_near_the_true_noise(problem, noise):
    from pyude.pipeline._data import noise_estimate
    t, truth, data = pipeline.make_data(pipeline.PROBLEMS[problem], noise, seed=3)
    true = float(((data - truth) ** 2).mean())
    assert 0.6 < noise_estimate(t, data) / true < 1.2


def test_the_structure_search_shows_its_progress(capsys):
    pytest.importorskip("tqdm")
    from pyude.pipeline._output import SearchProgress
    bar = SearchProgress(True, first_sweep=2)
    for k in range(3):
        bar.update(dict(best=dict(bic=-100.0 - k, equations=["-0.9*x*y", "0.8*x*y"])))
    bar.close()
    err = capsys.readouterr().err
    assert "structure search" in err and "3/3" in err
    assert "best BIC -102.0: -0.9*x*y | 0.8*x*y" in err
