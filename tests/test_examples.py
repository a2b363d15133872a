"""Every example runs (quickly) and every `pyude` command works."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
QUICK_ARGS = {"batch_and_gradients.py": ["--iters", "5"]}


def _run(args, cwd):
    env = dict(os.environ, MPLBACKEND="Agg")
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


@pytest.mark.parametrize("script", sorted(p.name for p in (ROOT / "examples").glob("*.py")))
def test_example_runs(script, tmp_path):
    args = [str(ROOT / "examples" / script), *QUICK_ARGS.get(script, [])]
    result = _run(args, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_lotka_volterra_example_writes_its_plot(tmp_path):
    pytest.importorskip("matplotlib")
    result = _run([str(ROOT / "examples" / "lotka_volterra.py"), "--out", "lv.png"], tmp_path)
    assert result.returncode == 0 and (tmp_path / "lv.png").stat().st_size > 1000


def test_pyude_solvers_command(tmp_path):
    result = _run(["-m", "pyude.cli", "solvers", "--batch", "8"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Tsit5()" in result.stdout and "d/dalpha" in result.stdout
