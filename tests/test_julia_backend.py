"""The Julia backend: what can be checked without Julia always runs; the rest is marked
`julia` and skips with the reason when Julia is absent."""

import json
import os
import re
import shutil
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
JULIA_PACKAGE = ROOT / "julia" / "PyUDE"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

requires_julia = pytest.mark.skipif(not pyude.julia.available(),
                                    reason="Julia is not installed (pip install pyude[julia])")


def test_julia_sources_pass_fatou_lint():
    files = sorted(JULIA_PACKAGE.rglob("*.jl"))
    assert len(files) >= 4
    result = fatou_lint(files)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", ["PyUDE.jl", "models.jl", "solve.jl"])
def test_fatou_checks_names_in_every_source_file(tmp_path, name):
    """fatou skips name checks in a file that evaluates code, so only define.jl does that,
    and an undefined name in any other file is reported."""
    assert sorted(p.name for p in (JULIA_PACKAGE / "src").glob("*.jl")
                  if "eval(" in p.read_text()) == ["define.jl"]
    copy = tmp_path / "PyUDE"
    shutil.copytree(JULIA_PACKAGE, copy)
    shutil.copy(ROOT / "fatou.toml", copy / "fatou.toml")
    with open(copy / "src" / name, "a") as f:
        f.write("\nlint_probe() = undefined_probe_name\n")
    result = fatou_lint(sorted((copy / "src").glob("*.jl")))
    assert "undefined_probe_name" in result.stdout + result.stderr


def test_julia_source_carries_the_audit_fixes():
    """What only Julia can run, checked in the source: ZygoteVJP allows a model that never
    reads p (2); a throwing pullback falls back to the forward return code (4); every
    solve option PyUDE.solve_options takes reaches `solve` (3, 5, 19); AutoDP5 (6); the exact
    GELU and torch's Softplus (10)."""
    solve_jl = (JULIA_PACKAGE / "src" / "solve.jl").read_text()
    models_jl = (JULIA_PACKAGE / "src" / "models.jl").read_text()
    assert "ZygoteVJP(allow_nothing = true)" in solve_jl
    assert "ZygoteVJP()" not in solve_jl
    pullback = solve_jl[solve_jl.index("function solve_pullback"):]
    assert "catch" in pullback and 'retcode == "Success" && rethrow()' in pullback
    signature = solve_jl[solve_jl.index("function solve_options("):].split(")")[0]
    from pyude.julia._solve import solve_options
    from test_julia_bridge import _options
    names = re.findall(r"(\w+)::", signature)
    assert names == list(solve_options(_options()))
    for keyword in ["saveat", "abstol", "reltol", "maxiters", "dtmax", "adaptive", "dt",
                    "dtmin", "tstops"]:
        assert f"{keyword} = " in solve_jl
    assert "OrdinaryDiffEqLowOrderRK.AutoDP5(inner; settings...)" in solve_jl
    assert "SpecialFunctions.erf" in models_jl
    assert "beta * x > threshold ? x : log1p(exp(beta * x)) / beta" in models_jl


def test_one_juliapkg_json_lists_every_package_the_julia_code_imports():
    """One file at the top (no copy to keep in sync); every [deps] entry of the Julia package
    with its UUID and compat, so the floors (16) are the same in both."""
    assert not (ROOT / "pyude" / "juliapkg.json").exists()
    spec = json.loads((ROOT / "juliapkg.json").read_text())
    project = tomllib.loads((JULIA_PACKAGE / "Project.toml").read_text())
    assert spec["julia"] == project["compat"]["julia"] == "1.10"
    for name, pkg in spec["packages"].items():
        assert UUID.match(pkg["uuid"]), name
        assert not name.endswith(".jl")
    stdlibs = {"Random"}          # versioned with Julia: no compat range in the environment
    for dep, uuid in project["deps"].items():
        expected = {"uuid": uuid} if dep in stdlibs else \
            {"uuid": uuid, "version": project["compat"][dep]}
        assert spec["packages"][dep] == expected, dep


def test_juliapkg_json_has_no_paths():
    """(15) pyude's Julia package is included from its file, not added to the environment:
    a checkout's juliapkg.json and an installed copy (both seen when an installed pyude runs
    from the repository root) then merge, where two `path`s to two copies raise "'path'
    entries are not unique", and a failure in it cannot stop PySR loading (18)."""
    spec = json.loads((ROOT / "juliapkg.json").read_text())
    assert "PyUDE" not in spec["packages"]
    assert all("path" not in pkg and "dev" not in pkg for pkg in spec["packages"].values())


def test_compat_floors_take_adtypes():
    """(16) Rosenbrock before 1.4 and SDIRK before 1.2 took autodiff=Val{true}()."""
    project = tomllib.loads((JULIA_PACKAGE / "Project.toml").read_text())
    assert project["compat"]["OrdinaryDiffEqRosenbrock"] == "1.4, 2"
    assert project["compat"]["OrdinaryDiffEqSDIRK"] == "1.2, 2"


def test_compatible_with_pysr_pins():
    """pysr 2.7.2 needs julia "=1.10.0, 1.10.3" and juliacall >= 0.9.36, < 0.9.37."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "juliacall>=0.9.36,<0.9.37" in pyproject["project"]["optional-dependencies"]["julia"]
    assert json.loads((ROOT / "juliapkg.json").read_text())["julia"] == "1.10"


def test_wheel_from_a_clean_checkout_carries_the_julia_package(tmp_path):
    """The wheel carries julia/PyUDE and the one juliapkg.json under pyude/, and the
    installed pyude finds its Julia package from its own file."""
    from hatchling.build import build_wheel

    checkout = tmp_path / "checkout"
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                           check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        if (ROOT / name).is_file():
            (checkout / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, checkout / name)
    for name in ["julia/PyUDE/src/solve.jl", "juliapkg.json", "pyproject.toml"]:
        assert (checkout / name).exists(), f"{name} is not committed"
    cwd = os.getcwd()
    os.chdir(checkout)
    try:
        wheel_name = build_wheel(str(tmp_path / "dist"))
    finally:
        os.chdir(cwd)
    site = tmp_path / "site"
    with zipfile.ZipFile(tmp_path / "dist" / wheel_name) as wheel:
        names = set(wheel.namelist())
        assert json.loads(wheel.read("pyude/juliapkg.json")) == \
            json.loads((ROOT / "juliapkg.json").read_text())
        wheel.extractall(site)
    for jl in JULIA_PACKAGE.rglob("*"):
        if jl.is_file():
            assert f"pyude/julia/PyUDE/{jl.relative_to(JULIA_PACKAGE).as_posix()}" in names
    code = ("import pyude.julia._runtime as r; print(r.ENTRY_FILE); "
            "print(r.ENTRY_FILE.is_file())")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(site)})
    assert out.returncode == 0, out.stderr
    entry, exists = out.stdout.split()
    assert Path(entry) == site / "pyude" / "julia" / "PyUDE" / "src" / "PyUDE.jl"
    assert exists == "True"


def test_checkout_finds_the_julia_package_at_the_top():
    assert pyude.julia._runtime.ENTRY_FILE == JULIA_PACKAGE / "src" / "PyUDE.jl"


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
    pyude.backends._ANNOUNCED.clear()
    # float32: the compiled backend, first in auto's order, computes in float64 only
    prob = pyude.problems.lotka_volterra_problem().remake(u0=torch.ones(2))
    with pytest.warns(pyude.backends.BackendNotice,
                      match="native backend: .*float64 only.*; Julia is not"):
        sol = pyude.solve(prob, pyude.Tsit5(), saveat=[1.0], backend="auto")
    assert sol.success


def test_algorithm_names_cross():
    from pyude.julia._solve import algorithm_call
    assert algorithm_call(pyude.Rodas5P()) == ("algorithm", "Rodas5P", True)
    assert algorithm_call(pyude.AutoTsit5(pyude.Rosenbrock23()))[:3] == \
        ("auto_switch", "Tsit5", "Rosenbrock23")
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


# --- the audit's defects, in Julia ------------------------------------------------------------

def _lv_with_grad(tspan=(0.0, 5.0)):
    x = torch.tensor([1.0, 1.0, 1.5, 1.0, 3.0, 1.0], dtype=torch.float64, requires_grad=True)
    prob = pyude.ODEProblem(pyude.problems.lotka_volterra, x[:2], tspan,
                            dict(zip(["alpha", "beta", "gamma", "delta"], x[2:])))
    return x, prob


@requires_julia
@pytest.mark.julia
@pytest.mark.parametrize("solver", [pyude.Euler(), pyude.Midpoint(), pyude.Heun(),
                                    pyude.RK4()], ids=repr)
def test_fixed_step_solvers_match_native(solver):
    """(5) dt crosses; the fixed-step methods take the same steps as natively."""
    prob = pyude.problems.lotka_volterra_problem(tspan=(0.0, 1.0))
    native = pyude.solve(prob, solver, dt=0.01, saveat=[0.5, 1.0])
    julia = pyude.solve(prob, solver, dt=0.01, saveat=[0.5, 1.0], backend="julia")
    np.testing.assert_allclose(julia.u.numpy(), native.u.numpy(), rtol=1e-10)


@requires_julia
@pytest.mark.julia
@pytest.mark.parametrize("tspan", [(0.0, 1.0), (1.0, 0.0)], ids=["forward", "backward"])
def test_fixed_step_gradients_match_native(tspan):
    """(5) a fixed-step solve under an adjoint, in both directions of time."""
    def grads(backend):
        x, prob = _lv_with_grad(tspan=tspan)
        sol = pyude.solve(prob, pyude.RK4(), dt=0.01, saveat=[tspan[1]],
                          sensealg=pyude.InterpolatingAdjoint(), backend=backend)
        sol.u.sum().backward()
        return x.grad.numpy()
    np.testing.assert_allclose(grads("julia"), grads("native"), rtol=1e-3)


@requires_julia
@pytest.mark.julia
def test_every_step_saved_with_per_component_atol_and_tstops():
    """(19, 3) no saveat, one atol per component, a tstop stepped onto, dtmax honoured."""
    prob = pyude.problems.lotka_volterra_problem(tspan=(0.0, 2.0))
    sol = pyude.solve(prob, pyude.Tsit5(), atol=[1e-9, 1e-10], rtol=1e-8, tstops=[0.7],
                      dtmax=0.1, backend="julia")
    t = sol.t.numpy()
    assert t[0] == 0.0 and t[-1] == 2.0 and 0.7 in t
    assert np.diff(t).max() <= 0.1 + 1e-12
    native = pyude.solve(prob, pyude.Tsit5(), atol=[1e-9, 1e-10], rtol=1e-8, saveat=[2.0])
    np.testing.assert_allclose(sol.u[-1].numpy(), native.u[-1].numpy(), rtol=1e-6)


@requires_julia
@pytest.mark.julia
def test_gradient_of_a_model_that_never_reads_p():
    """(2) ZygoteVJP(allow_nothing=true): the parameter's gradient is zero."""
    p = torch.tensor([2.0], dtype=torch.float64, requires_grad=True)
    u0 = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
    prob = pyude.ODEProblem(lambda u, p_, t: [-u[0]], u0, (0.0, 1.0), p)
    sol = pyude.solve(prob, pyude.Tsit5(), saveat=[1.0], rtol=1e-10, atol=1e-10,
                      sensealg=pyude.GaussAdjoint(), backend="julia")
    sol.u.sum().backward()
    assert abs(float(u0.grad[0]) - np.exp(-1.0)) < 1e-7
    assert float(p.grad[0]) == 0.0


@requires_julia
@pytest.mark.julia
def test_failed_solve_with_gradients_returns_maxiters():
    """(4) a failed forward solve under gradients returns its code, not a JuliaError."""
    x, prob = _lv_with_grad(tspan=(0.0, 10.0))
    sol = pyude.solve(prob, pyude.Tsit5(), saveat=[5.0, 10.0], maxiters=5, throw=False,
                      sensealg=pyude.InterpolatingAdjoint(), backend="julia")
    assert sol.retcode is pyude.ReturnCode.MaxIters
    assert sol.t.numel() <= 1 and (sol.t.numel() == 0 or float(sol.t[0]) < 5.0)   # (12)


@requires_julia
@pytest.mark.julia
def test_backward_in_time_gradients_match_native():
    """(11) the states come back in the order of t, and so do the gradients."""
    def grads(backend):
        x, prob = _lv_with_grad(tspan=(5.0, 0.0))
        sol = pyude.solve(prob, pyude.Tsit5(), saveat=[4.0, 1.0, 0.0], rtol=1e-10,
                          atol=1e-10, sensealg=pyude.InterpolatingAdjoint(), backend=backend)
        weights = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)[:, None]
        (weights * sol.u**2).sum().backward()
        return sol.t.numpy(), sol.u.detach().numpy(), x.grad.numpy()
    tj, uj, gj = grads("julia")
    tn, un, gn = grads("native")
    np.testing.assert_array_equal(tj, [4.0, 1.0, 0.0])
    np.testing.assert_allclose(uj, un, rtol=1e-7)
    np.testing.assert_allclose(gj, gn, rtol=1e-5)


@requires_julia
@pytest.mark.julia
def test_ude_without_physical_parameters_and_exact_gelu_softplus_match_native():
    """(1, 10) no physical parameters; GELU (erf) and Softplus(beta, threshold) as in torch."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 4), nn.GELU(), nn.Linear(4, 4),
                        nn.Softplus(beta=2.0, threshold=1.0), nn.Linear(4, 2)).double()

    def f(u, p, t, nn_):
        m1, m2 = nn_(u)
        return [m1, m2]
    t = torch.linspace(0.0, 1.0, 4, dtype=torch.float64)
    u0 = torch.tensor([0.4, -0.3], dtype=torch.float64)
    outs = {}
    for backend in ("native", "julia"):
        model = pyude.UDE(f, net, {}, solver=pyude.Tsit5(), rtol=1e-10, atol=1e-10,
                          sensealg=pyude.InterpolatingAdjoint(), backend=backend)
        net.zero_grad()
        y = model(u0, t)
        y.sum().backward()
        outs[backend] = (y.detach().numpy(), net[0].weight.grad.numpy().copy())
    np.testing.assert_allclose(outs["julia"][0], outs["native"][0], rtol=1e-7)
    np.testing.assert_allclose(outs["julia"][1], outs["native"][1], rtol=1e-5)


@requires_julia
@pytest.mark.julia
def test_auto_switch_from_dp5_runs():
    """(6) AutoSwitch(DP5(), stiff) crosses as AutoDP5."""
    prob = pyude.problems.lotka_volterra_problem()
    solver = pyude.AutoSwitch(pyude.DP5(), pyude.Rodas5P())
    julia = pyude.solve(prob, solver, saveat=[10.0], rtol=1e-8, atol=1e-8, backend="julia")
    native = pyude.solve(prob, pyude.Tsit5(), saveat=[10.0], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(julia.u.numpy(), native.u.numpy(), rtol=1e-5)


@requires_julia
@pytest.mark.julia
def test_no_grad_and_a_second_backward():
    """(17) no adjoint under no_grad; the pullback survives retain_graph."""
    x, prob = _lv_with_grad()
    with torch.no_grad():
        sol = pyude.solve(prob, pyude.Tsit5(), saveat=[1.0], backend="julia")
    assert not sol.u.requires_grad
    sol = pyude.solve(prob, pyude.Tsit5(), saveat=[1.0], backend="julia")
    loss = sol.u.sum()
    loss.backward(retain_graph=True)
    first = x.grad.clone()
    loss.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * first.numpy())


@requires_julia
@pytest.mark.julia
def test_repeated_solves_reuse_the_compiled_model():
    """(8) the second solve of the same model compiles nothing new, so it is fast."""
    import time
    prob = pyude.problems.lotka_volterra_problem()
    pyude.solve(prob, pyude.Tsit5(), saveat=[10.0], backend="julia")
    start = time.perf_counter()
    for _ in range(5):
        pyude.solve(prob, pyude.Tsit5(), saveat=[10.0], backend="julia")
    assert (time.perf_counter() - start) / 5 < 1.0


@requires_julia
@pytest.mark.julia
def test_to_diffeqpy_solves_in_the_running_julia():
    """(7) diffeqpy's de uses the Julia juliacall started; a batch is refused."""
    pytest.importorskip("diffeqpy")
    prob = pyude.problems.lotka_volterra_problem()
    de = pyude.julia.diffeqpy_de()
    sol = de.solve(pyude.julia.to_diffeqpy(prob), de.Tsit5(), reltol=1e-10, abstol=1e-10)
    end = np.asarray(sol.u[-1])
    np.testing.assert_allclose(end, [1.026344767575089, 0.9096910781360416], rtol=1e-7)


@requires_julia
@pytest.mark.julia
def test_julia_package_tests_pass():
    """The Julia side alone: julia/PyUDE's own test set, in the running Julia."""
    jl = pyude.julia.init()
    assert jl is not None
    exe = pyude.julia._runtime.julia_executable()
    if exe is None:
        pytest.skip("the Julia executable is not known")
    out = subprocess.run([exe, f"--project={JULIA_PACKAGE}", "-e",
                          "import Pkg; Pkg.instantiate(); Pkg.test()"], capture_output=True,
                         text=True, timeout=3600)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
