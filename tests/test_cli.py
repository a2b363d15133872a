"""`pyude demo` and `pyude discover`: arguments, data files, and their errors."""

import functools

import numpy as np
import pytest

from pyude import cli, pipeline


@pytest.fixture
def quick_pipeline(monkeypatch):
    """The real pipeline on short schedules (the full ones are the benchmark's)."""
    monkeypatch.setattr(pipeline, "run", functools.partial(
        pipeline.run, collocation_iters=30, adam_iters=3, lbfgs_iters=0, refit_iters=5,
        per_target=2))


def _write_csv(path, t, u, header="t,x,y"):
    rows = np.column_stack([t, u])
    np.savetxt(path, rows, delimiter=",", header=header, comments="")


def test_demo_prints_the_discovered_equations(quick_pipeline, tmp_path, capsys):
    pytest.importorskip("pysindy")
    code = cli.main(["demo", "--noise", "0.01", "--seed", "1", "--out", str(tmp_path),
                     "--no-plots", "--quiet", "--parsimony", "2"])
    out = capsys.readouterr().out
    assert code == 0
    assert "lotka_volterra, simulated data, noise 1.00%, seed 1" in out
    assert "dx/dt = " in out and "dy/dt = " in out and "structure recovered:" in out
    assert f"report: {tmp_path}/report.md" in out and (tmp_path / "report.md").exists()
    assert "within 2 BIC units" in (tmp_path / "report.md").read_text()


@pytest.mark.parametrize("suffix", [".csv", ".npz"])
def test_discover_reads_a_data_file(quick_pipeline, suffix, tmp_path, capsys):
    pytest.importorskip("pysindy")
    t, _, data = pipeline.make_data(pipeline.PROBLEMS["lotka_volterra"], 0.01, seed=2)
    path = tmp_path / f"obs{suffix}"
    if suffix == ".csv":
        _write_csv(path, t.numpy(), data.numpy())
    else:
        np.savez(path, t=t.numpy(), u=data.numpy())
    code = cli.main(["discover", "--data", str(path), "--out", str(tmp_path / "r"),
                     "--no-plots", "--quiet"])
    out = capsys.readouterr().out
    assert code == 0 and f"data from {path}" in out and "dx/dt = " in out


@pytest.mark.parametrize("write,match", [
    (lambda p: _write_csv(p, [0, 1, 2], [[1, 1]] * 3, header="time,x,z"),
     r"no column for the state\(s\) \['y'\]"),
    (lambda p: _write_csv(p, [0, 1, 2], [[1, 1]] * 3, header="s,x,y"),
     "no time column: its header must name one `t` or `time`"),
    (lambda p: _write_csv(p, [0, 2, 1], [[1, 1]] * 3), "strictly increasing"),
    (lambda p: _write_csv(p, [0, 1, 2], [[1, np.nan]] * 3), "data contains NaN"),
    (lambda p: _write_csv(p, [0, 1], [[1, 1]] * 2), "at least 3 observation times"),
], ids=["missing-state", "no-time", "unsorted", "nan", "too-few"])
def test_bad_data_files_are_refused_before_any_work(write, match, tmp_path, capsys):
    pytest.importorskip("pysindy")
    path = tmp_path / "obs.csv"
    write(path)
    assert cli.main(["discover", "--data", str(path), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pyude discover: ")
    assert __import__("re").search(match, err), err


def test_npz_without_the_arrays_is_refused(tmp_path):
    np.savez(tmp_path / "obs.npz", times=np.arange(3.0))
    with pytest.raises(ValueError, match=r"lacks the array\(s\) \['t', 'u'\]"):
        pipeline.load_data(tmp_path / "obs.npz")


def test_other_file_types_are_refused(tmp_path):
    (tmp_path / "obs.txt").write_text("1 2 3")
    with pytest.raises(ValueError, match="give a .csv .* or an .npz"):
        pipeline.load_data(tmp_path / "obs.txt")


def test_problem_from_a_file_of_your_own(tmp_path):
    (tmp_path / "mine.py").write_text(
        "from pyude.pipeline import DiscoveryProblem\n"
        "def ude(u, p, t, nn):\n"
        "    x, y = u\n"
        "    m1, m2 = nn(u)\n"
        "    return [p.a * x + m1, -p.b * y + m2]\n"
        "PROBLEM = DiscoveryProblem('mine', ude, dict(a=1.0, b=2.0), ['x', 'y'], 2)\n"
        "OTHER = 3\n")
    assert pipeline.load_problem(f"{tmp_path}/mine.py:PROBLEM").name == "mine"
    with pytest.raises(TypeError, match="has no DiscoveryProblem named 'OTHER' \\(found int\\)"):
        pipeline.load_problem(f"{tmp_path}/mine.py:OTHER")
    with pytest.raises(FileNotFoundError, match="no Python file at"):
        pipeline.load_problem(f"{tmp_path}/nope.py:PROBLEM")
    with pytest.raises(ValueError, match="unknown problem 'nope'; built-in problems: "
                                         "lotka_volterra, cubic_friction"):
        pipeline.load_problem("nope")


def test_a_problem_without_a_truth_needs_data(tmp_path):
    spec = pipeline.DiscoveryProblem("mine", lambda u, p, t, nn: nn(u), {}, ["x"], 1)
    with pytest.raises(ValueError, match="no true model to simulate data from; give the "
                                         "observations"):
        pipeline.run(spec, out=tmp_path)


def test_a_negative_parsimony_margin_is_refused(tmp_path, capsys):
    code = cli.main(["demo", "--parsimony", "-1", "--out", str(tmp_path), "--quiet"])
    assert code == 2
    assert "parsimony must be a BIC margin >= 0" in capsys.readouterr().err


def test_unknown_regression_backend_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown symbolic-regression backend 'gp'"):
        pipeline.run("lotka_volterra", regression="gp", out=tmp_path)


@pytest.mark.parametrize("argv,match", [
    (["demo", "--noise", "-1"], "noise must be a fraction from 0 to 1"),
    (["demo", "--noise", "nan"], "noise must be a fraction from 0 to 1 .* got nan"),
    (["demo", "--degree", "9"], "degree must be a whole number from 1 to 6"),
], ids=["negative-noise", "nan-noise", "degree"])
def test_bad_options_are_refused_with_code_2(argv, match, tmp_path, capsys):
    assert cli.main([*argv, "--out", str(tmp_path / "r"), "--quiet"]) == 2
    assert __import__("re").search(match, capsys.readouterr().err)
    assert not (tmp_path / "r").exists()


def test_noise_with_own_data_is_refused(tmp_path, capsys):
    _write_csv(tmp_path / "obs.csv", [0, 1, 2], [[1, 1]] * 3)
    code = cli.main(["discover", "--data", str(tmp_path / "obs.csv"), "--noise", "0.01",
                     "--out", str(tmp_path / "r")])
    assert code == 2 and "with your own data" in capsys.readouterr().err


def test_an_existing_report_needs_force(tmp_path, capsys):
    (tmp_path / "results.json").write_text("{}")
    assert cli.main(["demo", "--out", str(tmp_path), "--quiet"]) == 2
    assert "already holds a report (results.json); pass --force" in capsys.readouterr().err


def test_a_problem_file_with_a_syntax_error_is_bad_input(tmp_path, capsys):
    (tmp_path / "mine.py").write_text("def (:\n")
    code = cli.main(["discover", "--problem", f"{tmp_path}/mine.py:PROBLEM",
                     "--out", str(tmp_path / "r")])
    assert code == 2 and "is not valid Python" in capsys.readouterr().err


def test_an_internal_error_shows_its_traceback_with_code_1(monkeypatch, tmp_path, capsys):
    def broken(*args, **kwargs):
        try:
            return 1 / 0
        except ZeroDivisionError as err:
            raise pipeline.InternalError("internal error in the fit stage: "
                                         "ZeroDivisionError") from err
    monkeypatch.setattr(pipeline, "run", broken)
    assert cli.main(["demo", "--out", str(tmp_path), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "ZeroDivisionError" in err
    assert "internal error in the fit stage" in err


def test_version(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--version"])
    assert capsys.readouterr().out.startswith("pyude ")


def test_a_file_that_is_not_an_npz_is_refused(tmp_path):
    (tmp_path / "obs.npz").write_text("t,x\n0,1\n")
    with pytest.raises(ValueError, match="is not a readable NPZ file"):
        pipeline.load_data(tmp_path / "obs.npz")
    np.savez(tmp_path / "words.npz", t=np.array(["a", "b", "c"]), u=np.ones((3, 2)))
    with pytest.raises(ValueError, match="the arrays t and u must hold numbers"):
        pipeline.load_data(tmp_path / "words.npz")


def test_solvers_refuses_an_empty_batch_as_bad_input(capsys):
    from pyude.cli import main
    with pytest.raises(SystemExit) as exit_:
        main(["solvers", "--batch", "0"])
    assert exit_.value.code == 2
    assert "0 trajectories: give at least 1" in capsys.readouterr().err


def test_a_compile_notice_is_one_plain_line_above_the_progress_bars(capsys):
    """The first compiled solve on a machine waits for the kernels; the CLI says so in one
    line (the notice comes from a timer thread, whose source line would mean nothing)."""
    from pyude.backends._compiled import CompileNotice
    from pyude.cli import _show_notices
    others = []
    shown = _show_notices(lambda *args: others.append(args))
    shown(CompileNotice("compiling pyude's numba kernels"), CompileNotice, "threading.py", 1)
    shown(UserWarning("something else"), UserWarning, "mine.py", 3)
    assert capsys.readouterr().err == "pyude: compiling pyude's numba kernels\n"
    assert len(others) == 1 and others[0][1] is UserWarning
