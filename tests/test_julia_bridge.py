"""The Julia backend's Python side against a stub of the PyUDE Julia module: what crosses to
Julia (options, algorithms, parameters, cached handles) and how what comes back is read
(times, order, return codes, gradients). Runs without Julia; the same behaviours are checked
in Julia by the `julia`-marked tests in test_julia_backend.py."""

import os
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import sympy

import pyude
from pyude.julia import _runtime
from pyude.julia import _solve as jsolve

ROOT = Path(__file__).resolve().parents[1]
OPTION_NAMES = ["saveat", "abstol", "reltol", "maxiters", "dt", "dtmin", "dtmax", "adaptive",
                "tstops"]


class StubJulia:
    """Stands in for the PyUDE module: records every call and answers with arrays shaped as
    Julia's are (states n x T)."""

    def __init__(self):
        self.calls: list[tuple] = []
        self.times = None          # the times a solve returns (default: saveat or t0, t1)
        self.retcode = "Success"
        self.back = "pullback"
        self.cotangents: list[np.ndarray] = []

    def _record(self, name, *args):
        self.calls.append((name, *args))

    def count(self, name):
        return sum(1 for c in self.calls if c[0] == name)

    def last(self, name):
        return next(c for c in reversed(self.calls) if c[0] == name)

    def define_rhs(self, src, name):
        self._record("define_rhs", src, name)
        return ("f", src)

    def ode_rhs(self, f):
        return ("ode", f)

    def build_mlp(self, ins, outs, acts, betas, thresholds):
        self._record("build_mlp", ins, outs, acts, betas, thresholds)
        return ("model", "axes", int(sum(i * o + o for i, o in zip(ins, outs))))

    def ude_rhs(self, f, model, axes, nphys):
        return ("ude", f, nphys)

    def neural_rhs(self, model, axes):
        return ("neural", model)

    def algorithm(self, name, autodiff):
        self._record("algorithm", name, autodiff)
        return ("alg", name)

    def auto_switch(self, *args):
        self._record("auto_switch", *args)
        return ("auto", *args)

    def sensitivity(self, name, vjp):
        self._record("sensitivity", name, vjp)
        return ("sense", name)

    def solve_options(self, *args):
        options = dict(zip(OPTION_NAMES, args))
        self._record("solve_options", options)
        return options

    def _result(self, u0, t0, t1, options):
        saveat = list(options["saveat"])
        ts = np.asarray(self.times if self.times is not None else (saveat or [t0, t1]), float)
        ys = np.asfortranarray(np.stack([np.asarray(u0) * (1 + k) for k in range(len(ts))],
                                        axis=1))
        return ys, ts, self.retcode, (7, 3, 1, 0, 0, 0)

    def solve_forward(self, rhs, u0, t0, t1, p, alg, options):
        self._record("solve_forward", rhs, np.array(u0), t0, t1, np.array(p), alg, options)
        return self._result(u0, t0, t1, options)

    def solve_pullback(self, rhs, u0, t0, t1, p, alg, sensealg, options):
        self._record("solve_pullback", rhs, np.array(u0), t0, t1, np.array(p), alg, sensealg,
                     options)
        return (*self._result(u0, t0, t1, options), self.back)

    def apply_pullback(self, back, cotangent, n_u0, n_p):
        assert back == self.back
        self.cotangents.append(np.array(cotangent))
        return np.ones(n_u0), np.arange(n_p, dtype=float)

    def make_problem(self, rhs, u0, t0, t1, p):
        return ("problem", rhs, np.array(u0), t0, t1, np.array(p))

    def seval(self, code):
        assert code == "Sys.BINDIR"
        return "/opt/julia-stub/bin"


@pytest.fixture
def jl(monkeypatch):
    stub = StubJulia()
    monkeypatch.setattr(_runtime, "_STATE", {"module": stub})
    monkeypatch.setattr(pyude.julia._compiled, "_COMPILED", {})
    return stub


def lv(u0=(1.0, 1.0), tspan=(0.0, 10.0), **p):
    params = dict(alpha=1.5, beta=1.0, gamma=3.0, delta=1.0)
    params.update(p)
    return pyude.ODEProblem(pyude.problems.lotka_volterra, u0, tspan, params)


def options_sent(jl):
    return jl.last("solve_options")[1]


# --- options: what Julia honours crosses, what it cannot is refused --------------------------

def test_options_cross_as_solve_keywords(jl):
    pyude.solve(lv(), pyude.Tsit5(), saveat=[1.0, 2.0], rtol=1e-7, atol=[1e-8, 1e-9],
                dtmin=1e-9, dtmax=0.5, maxiters=500, tstops=[0.25], backend="julia")
    sent = options_sent(jl)
    np.testing.assert_array_equal(sent["saveat"], [1.0, 2.0])
    np.testing.assert_array_equal(sent["abstol"], [1e-8, 1e-9])      # per component (3)
    assert sent["reltol"] == 1e-7 and sent["maxiters"] == 500
    assert sent["dtmin"] == 1e-9 and sent["dtmax"] == 0.5 and sent["dt"] == 0.0
    np.testing.assert_array_equal(sent["tstops"], [0.25])
    assert sent["adaptive"] is True


def test_the_defaults_are_solves_defaults(jl):
    pyude.solve(lv(), pyude.Tsit5(), saveat=[1.0], backend="julia")
    sent = options_sent(jl)
    assert sent["reltol"] == 1e-3 and list(sent["abstol"]) == [1e-6]
    assert sent["maxiters"] == pyude._options.DEFAULT_MAXITERS
    assert sent["dtmin"] == 0.0 and sent["dtmax"] == 10.0


@pytest.mark.parametrize("solver", [pyude.Euler(), pyude.Midpoint(), pyude.Heun(),
                                    pyude.RK4()], ids=repr)
def test_fixed_step_solvers_run_at_dt(jl, solver):
    """(5) dt crosses, and the fixed-step methods run with adaptive=false as natively."""
    pyude.solve(lv(tspan=(0.0, 1.0)), solver, dt=0.25, backend="julia")
    sent = options_sent(jl)
    assert sent["dt"] == 0.25 and sent["adaptive"] is False
    assert jl.last("algorithm")[1:] == (type(solver).__name__, True)


def test_backward_fixed_step_dt_carries_the_direction(jl):
    """OrdinaryDiffEq takes a fixed-step dt as given, so it points backwards; an adaptive dt
    and dtmax stay positive (OrdinaryDiffEq turns them, in the adjoint's reverse solve too)."""
    pyude.solve(lv(tspan=(1.0, 0.0)), pyude.Tsit5(), dt=0.1, adaptive=False,
                backend="julia")
    sent = options_sent(jl)
    assert sent["dt"] == -0.1 and sent["dtmax"] == 1.0 and sent["adaptive"] is False
    pyude.solve(lv(tspan=(1.0, 0.0)), pyude.Tsit5(), dt=0.1, saveat=[0.0], backend="julia")
    sent = options_sent(jl)
    assert sent["dt"] == 0.1 and sent["dtmax"] == 1.0 and sent["adaptive"] is True


def test_neural_ode_fixed_step_reaches_julia_with_dt(jl):
    net = nn.Sequential(nn.Linear(2, 2)).double()
    model = pyude.NeuralODE(net, pyude.Euler(), dt=0.5, backend="julia")
    with torch.no_grad():
        model(torch.ones(2, dtype=torch.float64), [0.0, 1.0])
    sent = options_sent(jl)
    assert sent["dt"] == 0.5 and sent["adaptive"] is False
    assert sent["reltol"] == 1e-3 and list(sent["abstol"]) == [1e-6]
    assert sent["maxiters"] == pyude._options.DEFAULT_MAXITERS


def test_julia_refuses_a_custom_controller():
    with pytest.raises(ValueError, match="backend='julia' does not take controller"):
        pyude.solve(lv(), pyude.Tsit5(), saveat=[1.0],
                    controller=pyude.PIController(beta1=0.1, beta2=0.05), backend="julia")


def test_julia_refuses_dense_output_with_saveat():
    with pytest.raises(ValueError, match="backend='julia' does not take dense=True with saveat"):
        pyude.solve(lv(), pyude.Tsit5(), saveat=[1.0], dense=True, backend="julia")


def test_julia_refuses_a_batch_without_saveat():
    prob = lv(u0=torch.ones(3, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="backend='julia' does not take a batch without "
                                         "saveat.*give saveat"):
        pyude.solve(prob, pyude.Tsit5(), backend="julia")


def test_refusals_come_before_julia_starts(monkeypatch):
    monkeypatch.setattr(_runtime, "_STATE", {})
    monkeypatch.setattr(_runtime, "init", lambda: pytest.fail("Julia was started"))
    with pytest.raises(ValueError, match="controller"):
        pyude.solve(lv(), pyude.Tsit5(), saveat=[1.0], backend="julia",
                    controller=pyude.PIController(beta1=0.1, beta2=0.05))


def test_solver_without_a_plain_julia_form_is_refused():
    class Custom(pyude.Tsit5):
        julia_name = "Tsit5(; thread = True)"
    with pytest.raises(ValueError, match="backend='julia' does not take the solver"):
        jsolve.algorithm_call(Custom())


def test_sensealg_without_a_julia_twin_is_refused():
    with pytest.raises(ValueError, match="has no SciMLSensitivity counterpart"):
        jsolve.sensitivity_name(object())


def test_sensitivity_names_come_from_the_classes(jl):
    for sensealg, name in [(pyude.DirectAdjoint(), "GaussAdjoint"),
                           (pyude.InterpolatingAdjoint(), "InterpolatingAdjoint"),
                           (pyude.QuadratureAdjoint(), "QuadratureAdjoint"),
                           (pyude.GaussAdjoint(), "GaussAdjoint"),
                           (pyude.BacksolveAdjoint(), "BacksolveAdjoint")]:
        pyude.solve(lv(), pyude.Tsit5(), saveat=[1.0], sensealg=sensealg, backend="julia")
        assert jl.last("sensitivity")[1:] == (name, "ZygoteVJP")


# --- algorithms ------------------------------------------------------------------------------

def test_auto_switch_from_dp5_crosses(jl):
    """(6) every automatic switch pyude builds is one PyUDE.auto_switch builds."""
    solver = pyude.AutoSwitch(pyude.DP5(), pyude.Rodas5P(autodiff=False), maxstiffstep=7)
    pyude.solve(lv(), solver, saveat=[1.0], backend="julia")
    assert jl.last("auto_switch")[1:] == ("DP5", "Rodas5P", False, 7, 3, 0.9, 0.9, 2.0, False)
    source = (_runtime.PACKAGE_DIR / "src" / "solve.jl").read_text()
    switchable = [s for s in (pyude.Tsit5(), pyude.DP5(), pyude.Vern7(), pyude.BS3(),
                              pyude.RK4()) if s.stability_size is not None]
    assert len(switchable) == 3
    for nonstiff in switchable:
        assert f'nonstiff == "{type(nonstiff).__name__}"' in source


def test_default_solver_crosses_as_auto_tsit5(jl):
    pyude.solve(lv(), saveat=[1.0], backend="julia")
    assert jl.last("auto_switch")[1:3] == ("Tsit5", "Rosenbrock23")


# --- what comes back -------------------------------------------------------------------------

def test_without_saveat_every_step_julia_saved_comes_back(jl):
    """(19) no saveat: Julia saves every step; the times are Julia's."""
    jl.times = [0.0, 0.3, 1.1, 10.0]
    sol = pyude.solve(lv(), pyude.Tsit5(), backend="julia")
    assert list(options_sent(jl)["saveat"]) == []
    assert sol.t.tolist() == [0.0, 0.3, 1.1, 10.0]
    assert sol.u.shape == (4, 2)


def test_failure_before_the_first_save_keeps_julias_time(jl):
    """(12) the state Julia saved at the failure time is labelled with that time."""
    jl.times, jl.retcode = [0.3], "MaxIters"
    sol = pyude.solve(lv(), pyude.Tsit5(), saveat=[1.0, 2.0], throw=False, backend="julia")
    assert sol.retcode is pyude.ReturnCode.MaxIters
    assert sol.t.tolist() == [0.3]


def test_backward_in_time_with_gradients_comes_back_in_the_order_of_t(jl):
    """(11) SciMLSensitivity returns the saved states sorted ascending; they are put back in
    the order of saveat, and the cotangent goes to Julia in Julia's order."""
    jl.times = [0.0, 0.5, 1.0]        # what SciMLSensitivity returns for saveat 1.0, 0.5, 0.0
    u0 = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    sol = pyude.solve(lv(u0=u0, tspan=(1.0, 0.0)), pyude.Tsit5(), saveat=[1.0, 0.5, 0.0],
                      backend="julia")
    assert sol.t.tolist() == [1.0, 0.5, 0.0]
    # the stub's k-th saved state is (1 + k) u0 in Julia's (ascending) order
    np.testing.assert_allclose(sol.u.detach().numpy(), [[3, 6], [2, 4], [1, 2]])
    weights = torch.tensor([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]], dtype=torch.float64)
    (sol.u * weights).sum().backward()
    np.testing.assert_array_equal(jl.cotangents[-1], [[3, 2, 1], [3, 2, 1]])


def test_failed_solve_with_gradients_returns_its_code(jl):
    """(4) SciMLSensitivity builds no pullback for a failed solve: the return code comes
    back, and asking for the gradient says why there is none."""
    jl.times, jl.retcode, jl.back = [1.0], "MaxIters", None
    u0 = torch.tensor([1.0, 1.0], dtype=torch.float64, requires_grad=True)
    sol = pyude.solve(lv(u0=u0), pyude.Tsit5(), saveat=[1.0, 2.0], throw=False,
                      backend="julia")
    assert sol.retcode is pyude.ReturnCode.MaxIters
    with pytest.raises(RuntimeError, match="no gradient: the Julia solve ended MaxIters"):
        sol.u.sum().backward()
    with pytest.raises(pyude.SolverError, match="MaxIters"):
        pyude.solve(lv(u0=u0), pyude.Tsit5(), saveat=[1.0, 2.0], backend="julia")


def test_no_grad_runs_no_pullback(jl):
    """(17) under torch.no_grad() the solve does not build an adjoint."""
    u0 = torch.tensor([1.0, 1.0], dtype=torch.float64, requires_grad=True)
    with torch.no_grad():
        pyude.solve(lv(u0=u0), pyude.Tsit5(), saveat=[1.0], backend="julia")
    assert jl.count("solve_pullback") == 0 and jl.count("solve_forward") == 1
    pyude.solve(lv(u0=u0), pyude.Tsit5(), saveat=[1.0], backend="julia")
    assert jl.count("solve_pullback") == 1


def test_second_backward_with_retain_graph(jl):
    """(17) the pullback is kept for a second backward pass."""
    u0 = torch.tensor([1.0, 1.0], dtype=torch.float64, requires_grad=True)
    sol = pyude.solve(lv(u0=u0), pyude.Tsit5(), saveat=[1.0], backend="julia")
    loss = sol.u.sum()
    loss.backward(retain_graph=True)
    loss.backward()
    assert len(jl.cotangents) == 2
    np.testing.assert_array_equal(u0.grad.numpy(), [2.0, 2.0])


def test_batch_is_one_solve_per_row(jl):
    u0 = torch.tensor([[1.0, 1.0], [2.0, 2.0]], dtype=torch.float64)
    sol = pyude.solve(lv(u0=u0), pyude.Tsit5(), saveat=[1.0, 2.0], backend="julia")
    assert sol.u.shape == (2, 2, 2) and jl.count("solve_forward") == 2


# --- parameters and networks -----------------------------------------------------------------

def ude_f(u, p, t, nn_):
    m1, m2 = nn_(u)
    return [m1, m2]


def test_ude_without_physical_parameters(jl):
    """(1) a UDE with no physical parameters crosses with the weights alone."""
    net = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 2)).double()
    model = pyude.UDE(ude_f, net, {}, backend="julia")
    y = model(torch.ones(2, dtype=torch.float64), [0.0, 1.0])
    assert y.shape == (2, 2)
    theta = jl.last("solve_pullback")[5]
    assert theta.shape == (2 * 3 + 3 + 3 * 2 + 2,)
    y.sum().backward()
    assert all(p.grad is not None for p in net.parameters())


def test_ude_parameters_come_first_in_the_flat_vector(jl):
    def f(u, p, t, nn_):
        m1, m2 = nn_(u)
        return [p.alpha * u[0] + m1, -p.delta * u[1] + m2]
    net = nn.Sequential(nn.Linear(2, 2)).double()
    model = pyude.UDE(f, net, dict(alpha=1.3, delta=1.8), trainable=["delta"],
                      backend="julia")
    with torch.no_grad():
        model(torch.ones(2, dtype=torch.float64), [0.0, 1.0])
    theta = jl.last("solve_forward")[5]
    np.testing.assert_allclose(theta[:2], [1.3, 1.8])
    np.testing.assert_array_equal(theta[2:], pyude.nn.to_flat(net))


def test_compiled_model_and_network_are_cached(jl):
    """(8) the right-hand side and the Lux chain are built once per model, not per solve."""
    for _ in range(3):
        pyude.solve(lv(), pyude.Tsit5(), saveat=[1.0], backend="julia")
    assert jl.count("define_rhs") == 1
    net = nn.Sequential(nn.Linear(2, 2), nn.Tanh(), nn.Linear(2, 2)).double()
    model = pyude.UDE(ude_f, net, {}, backend="julia")
    for _ in range(3):
        model(torch.ones(2, dtype=torch.float64), [0.0, 1.0]).sum().backward()
    assert jl.count("build_mlp") == 1 and jl.count("define_rhs") == 2
    other = nn.Sequential(nn.Linear(2, 2), nn.GELU(), nn.Linear(2, 2)).double()
    pyude.NeuralODE(other, backend="julia")(torch.ones(2, dtype=torch.float64), [0.0, 1.0])
    assert jl.count("build_mlp") == 2


def test_activations_cross_with_their_settings():
    """(10) torch's exact GELU, its tanh form, and Softplus's beta and threshold."""
    from pyude.julia._modules import mlp_arguments
    net = nn.Sequential(nn.Linear(2, 3), nn.GELU(), nn.Linear(3, 3),
                        nn.GELU(approximate="tanh"), nn.Linear(3, 3),
                        nn.Softplus(beta=2.0, threshold=5.0), nn.Linear(3, 1))
    _, _, acts, betas, thresholds = mlp_arguments(net)
    assert acts == "gelu_erf,gelu_tanh,softplus,identity"
    assert list(betas) == [1.0, 1.0, 2.0, 1.0] and list(thresholds) == [20.0, 20.0, 5.0, 20.0]
    models = (_runtime.PACKAGE_DIR / "src" / "models.jl").read_text()
    for act in ["gelu_erf", "gelu_tanh", "softplus", "identity", "tanh", "relu", "sigmoid",
                "rbf"]:
        assert f'"{act}"' in models


def test_julia_activation_formulas_match_torch():
    """The Julia definitions, transcribed: the same numbers as torch's modules."""
    import math
    x = torch.linspace(-4, 4, 41, dtype=torch.float64)
    erf_form = [v / 2 * (1 + math.erf(v / math.sqrt(2))) for v in x.tolist()]
    np.testing.assert_allclose(nn.GELU()(x).numpy(), erf_form, rtol=1e-14, atol=1e-15)
    tanh_form = [v / 2 * (1 + math.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v**3)))
                 for v in x.tolist()]
    np.testing.assert_allclose(nn.GELU(approximate="tanh")(x).numpy(), tanh_form,
                               rtol=1e-14, atol=1e-15)
    beta, threshold = 2.0, 1.0
    softplus = [v if beta * v > threshold else math.log1p(math.exp(beta * v)) / beta
                for v in x.tolist()]
    np.testing.assert_allclose(nn.Softplus(beta, threshold)(x).numpy(), softplus, rtol=1e-14)


@pytest.mark.gpu
def test_ude_on_gpu_crosses_from_the_cpu(jl):
    """(17) physical parameters and weights meet on the CPU; the result goes back to the GPU."""
    def f(u, p, t, nn_):
        m1, m2 = nn_(u)
        return [p.alpha * u[0] + m1, m2]
    net = nn.Sequential(nn.Linear(2, 2)).double().cuda()
    model = pyude.UDE(f, net, dict(alpha=1.0), backend="julia")
    y = model(torch.ones(2, dtype=torch.float64, device="cuda"), [0.0, 1.0])
    assert y.device.type == "cuda"
    y.sum().backward()
    assert net[0].weight.grad.device.type == "cuda"


def test_parameters_reach_julia_from_the_cpu():
    from pyude.julia._modules import lux_flat, physical_parameters
    net = nn.Sequential(nn.Linear(2, 2)).double()
    assert lux_flat(net).device.type == "cpu"
    field = pyude.UDE(ude_f, net, dict(a=1.0)).field
    assert physical_parameters(field, []).shape == (0,)
    assert physical_parameters(field, ["a"]).tolist() == [1.0]


# --- diffeqpy --------------------------------------------------------------------------------

def test_to_diffeqpy_refuses_a_batch(jl):
    """(7) a batched u0 is not flattened into one long state."""
    prob = lv(u0=torch.ones(3, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="to_diffeqpy takes one trajectory, a u0 of shape"):
        pyude.julia.to_diffeqpy(prob)
    made = pyude.julia.to_diffeqpy(lv())
    assert made[0] == "problem" and made[2].tolist() == [1.0, 1.0]


def test_diffeqpy_uses_the_running_julia(jl, monkeypatch):
    """(7) diffeqpy looks for `julia` on PATH; the running Julia's bin directory is put there
    before diffeqpy is imported."""
    fake = types.ModuleType("diffeqpy")
    fake.de = "de-module"
    monkeypatch.setitem(sys.modules, "diffeqpy", fake)
    monkeypatch.setenv("PATH", "/usr/bin")
    assert pyude.julia.diffeqpy_de() == "de-module"
    assert os.environ["PATH"].split(":")[0] == "/opt/julia-stub/bin"


# --- availability and start-up ---------------------------------------------------------------

@pytest.fixture
def juliacall_installed(monkeypatch):
    """juliacall importable (not imported), no Julia on PATH, an empty juliapkg project."""
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: object() if name == "juliacall" else real(name, *a))
    monkeypatch.delitem(sys.modules, "juliacall", raising=False)
    monkeypatch.setattr(_runtime, "_STATE", {})
    monkeypatch.setenv("PATH", "")
    for var in ["PYTHON_JULIACALL_EXE", "PYTHON_JULIACALL_PROJECT", "PYTHON_JULIAPKG_EXE"]:
        monkeypatch.delenv(var, raising=False)


def test_available_finds_the_julia_juliapkg_installed(juliacall_installed, monkeypatch,
                                                      tmp_path):
    """(14) juliapkg installs Julia under its own prefix, not on PATH."""
    monkeypatch.setenv("PYTHON_JULIAPKG_PROJECT", str(tmp_path))
    assert not pyude.julia.available()
    exe = tmp_path / "pyjuliapkg" / "install" / "bin" / "julia"
    exe.parent.mkdir(parents=True)
    exe.write_text("")
    assert pyude.julia.available()
    exe.unlink()
    other = tmp_path / "julia-1.10"
    other.write_text("")
    (tmp_path / "pyjuliapkg" / "meta.json").write_text(f'{{"executable": "{other}"}}')
    assert pyude.julia.available()
    assert _runtime.julia_executable() == str(other)


def test_juliacall_exe_alone_is_not_enough(juliacall_installed, monkeypatch, tmp_path):
    """(14) juliacall needs PYTHON_JULIACALL_EXE and PYTHON_JULIACALL_PROJECT together."""
    monkeypatch.setenv("PYTHON_JULIAPKG_PROJECT", str(tmp_path))
    monkeypatch.setenv("PYTHON_JULIACALL_EXE", "/opt/julia/bin/julia")
    assert not pyude.julia.available()
    rows = {k: (v, a) for k, v, a in pyude.julia.doctor_report()}
    state, advice = rows["Julia executable"]
    assert state == "not found"
    assert "set both PYTHON_JULIACALL_EXE and PYTHON_JULIACALL_PROJECT" in advice
    monkeypatch.setenv("PYTHON_JULIACALL_PROJECT", str(tmp_path))
    assert pyude.julia.available()


def test_auto_falls_back_when_julia_fails_to_start(juliacall_installed, monkeypatch):
    """(14) available() but the start fails: `auto` solves natively and says why; the failure
    is remembered, so Julia is not retried on every solve."""
    monkeypatch.setenv("PYTHON_JULIAPKG_EXE", "/opt/julia/bin/julia")
    fake = types.ModuleType("juliacall")

    def newmodule(name):
        raise Exception("could not find Julia")  # noqa: TRY002 (juliapkg raises Exception)
    fake.newmodule = newmodule
    monkeypatch.setitem(sys.modules, "juliacall", fake)
    monkeypatch.setattr(pyude.backends, "_ANNOUNCED", set())
    assert pyude.julia.available() is False      # juliacall imported but not started
    monkeypatch.delitem(sys.modules, "juliacall")
    assert pyude.julia.available()
    monkeypatch.setitem(sys.modules, "juliacall", fake)
    monkeypatch.setattr(_runtime, "available", lambda: "error" not in _runtime._STATE)
    with pytest.warns(pyude.backends.BackendNotice, match="native backend: .*could not find Julia"):
        # float32: the compiled backend, first in auto's order, takes float64 only
        sol = pyude.solve(lv().remake(u0=torch.ones(2)), pyude.Tsit5(), saveat=[1.0],
                          backend="auto")
    assert sol.success
    with pytest.raises(pyude.julia.JuliaUnavailableError, match="could not find Julia"):
        pyude.julia.init()


def test_auto_refusal_names_the_option(monkeypatch, jl):
    reason = pyude.julia.auto_refusal(lv(), pyude.Tsit5(), _options(controller=True),
                                      pyude.DirectAdjoint())
    assert "controller" in reason
    assert pyude.julia.auto_refusal(lv(), pyude.Tsit5(), _options(), pyude.DirectAdjoint()) \
        is None


def _options(controller=False):
    """The options object every backend receives, as `solve` builds it."""
    from pyude._options import SolveOptions
    chosen = pyude.PIController(beta1=0.1, beta2=0.05) if controller else pyude.PIController()
    return SolveOptions(t0=0.0, t1=10.0, rtol=1e-3, atol=1e-6, dt=None, dtmin=0.0,
                        dtmax=10.0, maxiters=1000, saveat=[1.0], tstops=[], adaptive=True,
                        dense=False, controller=chosen.for_solver(pyude.Tsit5()))


# --- generated source ------------------------------------------------------------------------

def test_generated_sources_pass_strict_fatou_lint(jl, tmp_path):
    """Every snippet this backend hands to Julia, under the project's strict fatou config."""
    import shutil

    from test_symbolic import fatou_lint

    shutil.copy(ROOT / "fatou.toml", tmp_path / "fatou.toml")

    def powers(u, p, t):
        return [(u[0] ** p.a) ** p.b + u[0] ** (p.a ** p.b), u[1] ** (p.a + 1.0)]

    def physics(u, p, t, nn_):
        m1, m2 = nn_(u)
        return [p.end * u[0] + m1, -p.t_ * u[1] + m2]
    pyude.solve(pyude.ODEProblem(powers, [1.0, 1.0], (0.0, 1.0), dict(a=1.5, b=0.5)),
                pyude.Tsit5(), saveat=[1.0], backend="julia")
    net = nn.Sequential(nn.Linear(2, 2)).double()
    for p in [{}, dict(end=1.0, t_=2.0)]:
        f = ude_f if not p else physics
        with torch.no_grad():
            pyude.UDE(f, net, p, backend="julia")(torch.ones(2, dtype=torch.float64),
                                                  [0.0, 1.0])
    sources = [c[1] for c in jl.calls if c[0] == "define_rhs"]
    assert len(sources) == 3 and "(u1^a)^b" in sources[0]
    files = []
    for i, src in enumerate(sources):
        files.append(tmp_path / f"model{i}.jl")
        files[-1].write_text(src)
    result = fatou_lint(files)
    assert result.returncode == 0, result.stdout + result.stderr


def test_power_of_a_power_keeps_its_grouping():
    """(9) Julia's ^ is right-associative: (x^a)^b must not print as x^a^b."""
    from pyude.symbolic import to_julia, trace
    src = to_julia(trace(lambda u, p, t: [(u[0] ** p.a) ** p.b + u[0] ** (p.a ** p.b)], 1,
                         {"a": 1.5, "b": 0.5}))
    assert "(u1^a)^b" in src and "u1^(a^b)" in src


@pytest.mark.parametrize("name, other", [("t", "time"), ("u1", "state"),
                                         ("nn1", "network output")])
def test_a_parameter_named_like_another_input_is_refused(name, other):
    """(13) the parameter would be the same symbol as the time, a state or a network output."""
    from pyude.symbolic import to_julia, trace

    def f(u, p, t, nn_):
        m1, = nn_(u)
        return [p[name] * u[0] + m1]
    with pytest.raises(ValueError, match=f"the name '{name}' belongs to a .*{other}.*Rename"):
        to_julia(trace(f, 1, {name: 1.0}, nn_outputs=1))


@pytest.mark.parametrize("name", ["x) + evil(", "a b", "1x", "\u03b1"])
def test_a_name_that_is_not_an_identifier_is_refused(name):
    """(13) names are pasted into Julia source that Core.eval runs."""
    from pyude.symbolic import to_julia, trace
    with pytest.raises(ValueError, match="is not a plain identifier.*rename it"):
        to_julia(trace(lambda u, p, t: [p[name] * u[0]], 1, {name: 1.0}))


def test_names_that_print_alike_are_refused():
    from pyude.symbolic import to_julia, trace
    with pytest.raises(ValueError, match="the name 'end_' belongs to a parameter and to a "
                                         "parameter"):
        to_julia(trace(lambda u, p, t: [p["end"] * p["end_"] * u[0]], 1,
                       {"end": 1.0, "end_": 2.0}))


def test_a_function_name_that_is_not_an_identifier_is_refused():
    from pyude.symbolic import to_julia, trace
    with pytest.raises(ValueError, match="the function name 'f; rm' is not a plain identifier"):
        to_julia(trace(lambda u, p, t: [-u[0]], 1), "f; rm")


def test_ude_network_must_see_the_whole_state(jl):
    def f(u, p, t, nn_):
        m1, m2 = nn_([u[0], u[0]])
        return [m1, m2]
    model = pyude.UDE(f, nn.Sequential(nn.Linear(2, 2)).double(), {}, backend="julia")
    with pytest.raises(ValueError, match="the network must be called on the whole state"):
        model(torch.ones(2, dtype=torch.float64), [0.0, 1.0])


def test_julia_backend_without_juliacall_says_how_to_install_it(monkeypatch):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "juliacall" else real(name, *a))
    monkeypatch.setattr(_runtime, "_STATE", {})
    with pytest.raises(pyude.julia.JuliaUnavailableError,
                       match="juliacall is not installed. Install the Julia backend with "
                             "`pip install pyude\\[julia\\]`"):
        pyude.julia.init()


def test_refused_names_stop_a_julia_solve_before_julia_starts(monkeypatch):
    monkeypatch.setattr(_runtime, "_STATE", {"module": StubJulia()})
    prob = pyude.ODEProblem(lambda u, p, t: [-p.t * u[0]], [1.0], (0.0, 1.0), {"t": 2.0})
    with pytest.raises(ValueError, match="the name 't' belongs to a parameter and to a time"):
        pyude.solve(prob, pyude.Tsit5(), saveat=[1.0], backend="julia")


# --- PySR ------------------------------------------------------------------------------------

def test_pysr_adapter_does_not_start_the_sciml_stack(monkeypatch):
    """(18) PySR starts Julia itself, with its own settings; pyude does not load its SciML
    package first."""
    from pyude.discovery import _gp
    monkeypatch.setattr(_runtime, "init", lambda: pytest.fail("the SciML stack was started"))
    monkeypatch.setattr(pyude.julia, "init", lambda: pytest.fail("the SciML stack started"))

    class Regressor:
        def __init__(self, **settings):
            self.equations_ = None

        def fit(self, X, y, variable_names):
            row = types.SimpleNamespace(sympy_format=sympy.Symbol("x"), complexity=1, loss=0.0)
            self.equations_ = types.SimpleNamespace(itertuples=lambda: iter([row]))
    fake = types.ModuleType("pysr")
    fake.PySRRegressor = Regressor
    monkeypatch.setitem(sys.modules, "pysr", fake)
    out = _gp.pysr_candidates(np.ones((3, 1)), np.ones((3, 1)), ["x"], ["dx"])
    assert list(out) == ["dx"]


def test_juliapkg_project_follows_juliapkgs_rules(monkeypatch, tmp_path):
    """(14) the environment juliapkg uses: PYTHON_JULIAPKG_PROJECT, else the virtual
    environment's julia_env, else the depot's environments/pyjuliapkg."""
    monkeypatch.setenv("PYTHON_JULIAPKG_PROJECT", str(tmp_path))
    assert _runtime._juliapkg_project() == tmp_path
    monkeypatch.delenv("PYTHON_JULIAPKG_PROJECT")
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "venv"))
    monkeypatch.setattr(sys, "base_prefix", "/usr")
    assert _runtime._juliapkg_project() == tmp_path / "venv" / "julia_env"
    monkeypatch.setattr(sys, "base_prefix", str(tmp_path / "venv"))
    monkeypatch.delenv("CONDA_PREFIX", raising=False)
    monkeypatch.setenv("JULIA_DEPOT_PATH", str(tmp_path / "depot"))
    assert _runtime._juliapkg_project() == tmp_path / "depot" / "environments" / "pyjuliapkg"


def test_doctor_names_each_extra_by_its_own_name():
    rows = {name: fix for name, _, fix in pyude.julia.doctor_report()}
    for package, extra in (("diffeqpy", "diffeqpy"), ("pysr", "pysr"), ("juliacall", "julia"),
                           ("distributed", "ensemble")):
        assert rows[package] in ("", f"pip install pyude[{extra}]"), package
