"""The Julia backend: what can be checked without Julia always runs; the rest is marked
`julia` and skips with the reason when Julia is absent."""

import json
import os
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import pyude
from test_symbolic import fatou_lint

ROOT = Path(__file__).resolve().parents[1]
JULIA_PACKAGE = ROOT / "pyude" / "julia" / "PyUDE"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

requires_julia = pytest.mark.skipif(not pyude.julia.available(),
                                    reason="Julia is not installed (pip install pyude[julia])")


def test_julia_sources_pass_fatou_lint():
    files = sorted(JULIA_PACKAGE.rglob("*.jl"))
    assert len(files) >= 4
    result = fatou_lint(files)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", ["juliapkg.json", "pyude/juliapkg.json"])
def test_juliapkg_json_is_valid_and_points_at_the_julia_package(path):
    spec = json.loads((ROOT / path).read_text())
    project = tomllib.loads((JULIA_PACKAGE / "Project.toml").read_text())
    assert spec["julia"] == "1.10"
    for name, pkg in spec["packages"].items():
        assert UUID.match(pkg["uuid"]), name
        assert not name.endswith(".jl")
    ours = spec["packages"]["PyUDE"]
    assert ours["uuid"] == project["uuid"] and ours["dev"] is True
    assert (ROOT / path).parent.joinpath(ours["path"]).resolve() == JULIA_PACKAGE
    # every package the Julia code imports is in the environment, with the same UUID
    for dep, uuid in project["deps"].items():
        if dep != "Random":
            assert spec["packages"][dep]["uuid"] == uuid, dep


def test_the_two_juliapkg_files_agree():
    top = json.loads((ROOT / "juliapkg.json").read_text())
    inner = json.loads((ROOT / "pyude" / "juliapkg.json").read_text())
    assert top["julia"] == inner["julia"]
    assert {k: {**v, "path": None} for k, v in top["packages"].items()} == \
        {k: {**v, "path": None} for k, v in inner["packages"].items()}


def test_compatible_with_pysr_pins():
    """pysr 2.7.2 needs julia "=1.10.0, 1.10.3" and juliacall >= 0.9.36, < 0.9.37."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "juliacall>=0.9.36,<0.9.37" in pyproject["project"]["optional-dependencies"]["julia"]
    assert json.loads((ROOT / "pyude" / "juliapkg.json").read_text())["julia"] == "1.10"


def test_wheel_carries_the_julia_package(tmp_path):
    from hatchling.build import build_wheel

    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        name = build_wheel(str(tmp_path))
    finally:
        os.chdir(cwd)
    with zipfile.ZipFile(tmp_path / name) as wheel:
        names = set(wheel.namelist())
        spec = json.loads(wheel.read("pyude/juliapkg.json"))
    path = spec["packages"]["PyUDE"]["path"]
    base = os.path.normpath(os.path.join("pyude", path))
    for needed in ["Project.toml", "src/PyUDE.jl", "src/models.jl", "src/solve.jl",
                   "test/runtests.jl"]:
        assert f"{base}/{needed}" in names


def test_julia_backend_without_julia_says_how_to_get_it(monkeypatch):
    monkeypatch.setattr(pyude.julia._runtime, "_STATE", {})
    if pyude.julia.available():
        pytest.skip("Julia is installed here")
    prob = pyude.problems.lotka_volterra_problem()
    with pytest.raises(pyude.julia.JuliaUnavailableError, match="pip install pyude\\[julia\\]"):
        pyude.solve(prob, pyude.Tsit5(), saveat=[1.0], backend="julia")
    model = pyude.NeuralODE(nn.Sequential(nn.Linear(2, 2)).double(), backend="julia")
    with pytest.raises(pyude.julia.JuliaUnavailableError, match="pyude doctor"):
        model(torch.ones(2, dtype=torch.float64), [0.0, 1.0])


def test_auto_backend_falls_back_to_native_and_says_so():
    if pyude.julia.available():
        pytest.skip("Julia is installed here")
    pyude._solve._ANNOUNCED.clear()
    prob = pyude.problems.lotka_volterra_problem()
    with pytest.warns(pyude._solve.BackendNotice, match="native backend: Julia is not"):
        sol = pyude.solve(prob, pyude.Tsit5(), saveat=[1.0], backend="auto")
    assert sol.success


def test_julia_rejects_native_only_options():
    prob = pyude.problems.lotka_volterra_problem()
    with pytest.raises(ValueError, match="backend='julia' does not take tstops"):
        pyude.solve(prob, pyude.Tsit5(), saveat=[1.0], tstops=[0.5], backend="julia")


def test_algorithm_names_cross():
    from pyude.julia._solve import julia_algorithm_name
    assert julia_algorithm_name(pyude.Rodas5P()) == "Rodas5P"
    assert julia_algorithm_name(pyude.AutoTsit5(pyude.Rosenbrock23())) == \
        "AutoTsit5:Rosenbrock23"
    algorithms = (JULIA_PACKAGE / "src" / "solve.jl").read_text()
    for entry in __import__("helpers").SOLVERS:
        assert f'name == "{type(entry.solver).__name__}"' in algorithms


def test_lux_flat_is_differentiable_and_matches_the_layout():
    from pyude.julia._modules import lux_flat
    net = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1)).double()
    flat = lux_flat(net)
    np.testing.assert_array_equal(flat.detach().numpy(), pyude.nn.to_flat(net))
    flat.sum().backward()
    assert all(p.grad is not None for p in net.parameters())


def test_doctor_reports_every_piece():
    out = subprocess.run([sys.executable, "-m", "pyude.cli", "doctor"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0
    for piece in ["Python", "torch", "juliacall", "pysr", "Julia executable", "Julia backend"]:
        assert piece in out.stdout
    if not pyude.julia.available():
        assert "pip install pyude[julia]" in out.stdout


# --- with Julia ---------------------------------------------------------------------------

@requires_julia
@pytest.mark.julia
def test_import_order_torch_then_pyude_then_julia():
    code = "import torch, pyude; pyude.julia.init(); print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=3600)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr


@requires_julia
@pytest.mark.julia
@pytest.mark.parametrize("solver", [pyude.Tsit5(), pyude.Vern7(), pyude.Rodas5P()], ids=repr)
def test_julia_matches_native_on_lotka_volterra(solver):
    prob = pyude.problems.lotka_volterra_problem()
    kw = dict(saveat=[1.0, 5.0, 10.0], rtol=1e-8, atol=1e-8)
    native = pyude.solve(prob, solver, **kw)
    julia = pyude.solve(prob, solver, backend="julia", **kw)
    np.testing.assert_allclose(julia.u.numpy(), native.u.numpy(), rtol=1e-7)


@requires_julia
@pytest.mark.julia
def test_julia_matches_native_on_rober():
    prob = pyude.problems.rober_problem()
    kw = dict(saveat=[1.0, 1e3, 1e5], rtol=1e-8, atol=1e-12)
    native = pyude.solve(prob, pyude.Rodas5P(), **kw)
    julia = pyude.solve(prob, pyude.Rodas5P(), backend="julia", **kw)
    np.testing.assert_allclose(julia.u.numpy(), native.u.numpy(), rtol=1e-7, atol=1e-12)


@requires_julia
@pytest.mark.julia
def test_julia_gradients_match_native():
    def grads(backend):
        x = torch.tensor([1.0, 1.0, 1.5, 1.0, 3.0, 1.0], dtype=torch.float64,
                         requires_grad=True)
        prob = pyude.ODEProblem(pyude.problems.lotka_volterra, x[:2], (0.0, 5.0),
                                dict(zip(["alpha", "beta", "gamma", "delta"], x[2:])))
        sol = pyude.solve(prob, pyude.Tsit5(), saveat=[1.0, 5.0], rtol=1e-10, atol=1e-10,
                          sensealg=pyude.InterpolatingAdjoint(), backend=backend)
        (sol.u**2).sum().backward()
        return x.grad.numpy()
    np.testing.assert_allclose(grads("julia"), grads("native"), rtol=1e-5)


@requires_julia
@pytest.mark.julia
def test_julia_ude_matches_native():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 5), nn.Tanh(), nn.Linear(5, 2)).double()

    f = pyude.problems.lotka_volterra_ude

    t = torch.linspace(0.0, 1.0, 5, dtype=torch.float64)
    u0 = torch.tensor([0.44, 4.6], dtype=torch.float64)
    outs = {}
    for backend in ("native", "julia"):
        model = pyude.UDE(f, net, dict(alpha=1.3, delta=1.8), solver=pyude.Tsit5(),
                          sensealg=pyude.InterpolatingAdjoint(), rtol=1e-10, atol=1e-10,
                          backend=backend)
        net.zero_grad()
        y = model(u0, t)
        (y**2).sum().backward()
        outs[backend] = (y.detach().numpy(), net[0].weight.grad.numpy().copy())
    np.testing.assert_allclose(outs["julia"][0], outs["native"][0], rtol=1e-7)
    np.testing.assert_allclose(outs["julia"][1], outs["native"][1], rtol=1e-5)


@requires_julia
@pytest.mark.julia
def test_retcodes_map():
    prob = pyude.problems.lotka_volterra_problem()
    sol = pyude.solve(prob, pyude.Tsit5(), saveat=[10.0], maxiters=5, throw=False,
                      backend="julia")
    assert sol.retcode is pyude.ReturnCode.MaxIters


@requires_julia
@pytest.mark.julia
def test_pysr_smoke():
    pysr = pytest.importorskip("pysr")
    x = np.linspace(-1, 1, 50)[:, None]
    model = pysr.PySRRegressor(niterations=5, binary_operators=["+", "*"], progress=False,
                               verbosity=0, parallelism="serial", deterministic=True,
                               random_state=0)
    model.fit(x, 2.0 * x[:, 0])
    assert model.equations_ is not None
