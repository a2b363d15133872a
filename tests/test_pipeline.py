"""The discovery pipeline runs end to end and writes its report (short schedules here; the
structure-recovery study is a benchmark, not a unit test)."""

import json

import pytest

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
    assert set(results["extrapolation"]) == {"discovered", "oracle"}
    pytest.importorskip("matplotlib")
    for png in ("fit.png", "terms.png", "extrapolation.png"):
        assert (tmp_path / png).stat().st_size > 1000


def test_pipeline_refuses_bad_data(tmp_path):
    with pytest.raises(ValueError, match="strictly increasing"):
        pipeline.run("lotka_volterra", t=[0.0, 2.0, 1.0], data=[[1, 1], [1, 1], [1, 1]],
                     out=tmp_path, progress=False)
