"""Every error path, by its message: bad input is refused before any work starts."""

import math

import numpy as np
import pytest
import torch

import pyude
from pyude.problems import lotka_volterra, lotka_volterra_problem

P = dict(alpha=1.5, beta=1.0, gamma=3.0, delta=1.0)


def lv_prob(**kw):
    return lotka_volterra_problem(**kw)


# --- the problem --------------------------------------------------------------------------

def test_f_must_be_callable():
    with pytest.raises(TypeError, match="f must be a callable f\\(u, p, t\\)"):
        pyude.ODEProblem(3, [1.0], (0, 1))


@pytest.mark.parametrize("bad", [[1.0, math.nan], [math.inf, 1.0]])
def test_non_finite_u0(bad):
    with pytest.raises(ValueError, match="u0 contains NaN or Inf"):
        pyude.ODEProblem(lotka_volterra, bad, (0, 1), P)


def test_non_finite_p():
    with pytest.raises(ValueError, match=r"p\['beta'\] contains NaN or Inf"):
        pyude.ODEProblem(lotka_volterra, [1.0, 1.0], (0, 1), dict(P, beta=math.nan))
    with pytest.raises(ValueError, match="p contains NaN or Inf"):
        pyude.ODEProblem(lotka_volterra, [1.0, 1.0], (0, 1), [1.0, math.inf])


@pytest.mark.parametrize("tspan,match", [
    ((0.0, math.nan), "tspan must be finite"),
    ((0.0, math.inf), "tspan must be finite"),
    ((0.0,), "tspan must be a pair"),
    ("ab", "tspan must be a pair"),
])
def test_bad_tspan(tspan, match):
    with pytest.raises((TypeError, ValueError), match=match):
        pyude.ODEProblem(lotka_volterra, [1.0, 1.0], tspan, P)


def test_complex_and_non_numeric_u0():
    with pytest.raises(TypeError, match="complex"):
        pyude.ODEProblem(lotka_volterra, torch.tensor([1 + 1j, 1.0]), (0, 1), P)
    with pytest.raises(TypeError, match="u0 must be numbers"):
        pyude.ODEProblem(lotka_volterra, ["a", "b"], (0, 1), P)
    with pytest.raises(ValueError, match="no components"):
        pyude.ODEProblem(lotka_volterra, torch.zeros(0), (0, 1), P)


def test_parameter_names_must_be_identifiers():
    with pytest.raises(TypeError, match="parameter names must be identifiers"):
        pyude.ODEProblem(lotka_volterra, [1.0, 1.0], (0, 1), {"not a name": 1.0})


def test_missing_named_parameter_says_which():
    prob = pyude.ODEProblem(lotka_volterra, [1.0, 1.0], (0, 1), dict(alpha=1.0))
    with pytest.raises(AttributeError, match="reads parameter `beta`.*add `beta`"):
        pyude.solve(prob, pyude.Tsit5())


def test_params_are_read_only():
    with pytest.raises(AttributeError, match="read-only"):
        pyude.Params(dict(a=1.0)).a = 2.0


@pytest.mark.parametrize("out,match", [
    (lambda u: [u[0], u[1], u[0]], "returned a list of 3 components.*u0 has shape \\(2,\\)"),
    (lambda u: torch.zeros(3), "returned a tensor of shape \\(3,\\)"),
    (lambda u: 1.0, "returned float"),
])
def test_f_output_shape_must_match_u0(out, match):
    prob = pyude.ODEProblem(lambda u, p, t: out(u), [1.0, 1.0], (0, 1))
    with pytest.raises(ValueError, match=match):
        pyude.solve(prob, pyude.Tsit5())


@pytest.mark.parametrize("solver", [pyude.Tsit5(), pyude.Rodas5P()], ids=repr)
def test_f_output_must_have_the_state_dtype(solver):
    # A float64 network on a float32 state: named before any step, with the fix.
    prob = pyude.ODEProblem(lambda u, p, t: [(-u[0]).double(), u[0].double()],
                            torch.tensor([1.0, 0.5]), (0, 1))
    with pytest.raises(ValueError, match="f returned torch.float64 values for a state of "
                                         "dtype torch.float32.*net.double()"):
        pyude.solve(prob, solver)


def test_f_output_with_the_wrong_batch_shape():
    prob = pyude.ODEProblem(lambda u, p, t: [torch.ones(5), torch.ones(5)], torch.ones(3, 2),
                            (0, 1))
    with pytest.raises(ValueError, match="u0 has shape \\(3, 2\\)"):
        pyude.solve(prob, pyude.Tsit5())


# --- solve's arguments ----------------------------------------------------------------------

@pytest.mark.parametrize("kw,match", [
    (dict(rtol=0.0), "rtol must be a finite positive number"),
    (dict(rtol=-1e-3), "rtol must be a finite positive number"),
    (dict(rtol=math.nan), "rtol must be a finite positive number"),
    (dict(rtol=1e-20), "below the precision of torch.float64"),
    (dict(atol=-1.0), "atol must be a finite positive number"),
    (dict(atol=[1e-6, 1e-6, 1e-6]), "one value per state component \\(2\\)"),
    (dict(atol=[1e-6, -1.0]), "atol must be finite and positive"),
    (dict(rtol="tight"), "rtol must be a real number"),
    (dict(saveat=[0.0, 11.0]), "saveat has times outside tspan"),
    (dict(saveat=[5.0, 1.0]), "saveat must be ordered"),
    (dict(saveat=[0.0, math.nan]), "saveat contains NaN"),
    (dict(saveat=0.0), "saveat must be a finite positive number"),
    (dict(tstops=[-1.0]), "tstops has times outside tspan"),
    (dict(dt=0.0), "dt must be a finite non-zero number"),
    (dict(dt=-0.1), "dt=-0.1 is negative but tspan"),
    (dict(dtmin=-1.0), "dtmin must be a finite non-negative number"),
    (dict(dtmax=0.0), "dtmax must be a finite positive number"),
    (dict(maxiters=0), "maxiters must be a positive integer"),
    (dict(maxiters=2.5), "maxiters must be a positive integer"),
    (dict(controller="PI"),
     "controller must be a pyude.PIController or a pyude.PredictiveController; got 'PI'"),
])
def test_bad_solve_arguments(kw, match):
    with pytest.raises((TypeError, ValueError), match=match):
        pyude.solve(lv_prob(), pyude.Tsit5(), **kw)


def test_float32_tolerance_floor():
    prob = pyude.ODEProblem(lotka_volterra, torch.ones(2), (0, 1), P)
    with pytest.raises(ValueError, match="below the precision of torch.float32"):
        pyude.solve(prob, pyude.Tsit5(), rtol=1e-9)


def test_unknown_keyword_names_the_closest():
    with pytest.raises(TypeError, match="unknown keyword argument\\(s\\) `rtl` \\(did you mean "
                                        "`rtol`\\?\\)"):
        pyude.solve(lv_prob(), pyude.Tsit5(), rtl=1e-6)
    with pytest.raises(TypeError, match="`method`"):
        pyude.solve(lv_prob(), pyude.Tsit5(), method="dopri5")


def test_fixed_step_solver_needs_dt():
    with pytest.raises(ValueError, match="RK4\\(\\) takes fixed steps, so it needs `dt`"):
        pyude.solve(lv_prob(), pyude.RK4())


def test_fixed_step_solver_cannot_adapt():
    with pytest.raises(ValueError, match="cannot adapt its step"):
        pyude.solve(lv_prob(), pyude.Euler(), dt=0.1, adaptive=True)


def test_solver_class_instead_of_instance():
    with pytest.raises(TypeError, match="pass a solver instance, `Tsit5\\(\\)`"):
        pyude.solve(lv_prob(), pyude.Tsit5)


def test_not_a_solver():
    with pytest.raises(TypeError, match="solver must be a pyude solver"):
        pyude.solve(lv_prob(), "Tsit5")


def test_not_a_problem():
    with pytest.raises(TypeError, match="needs a pyude.ODEProblem"):
        pyude.solve(lotka_volterra, pyude.Tsit5())


def test_unknown_backend():
    with pytest.raises(ValueError, match="unknown backend 'jula'; available backends: 'native'"):
        pyude.solve(lv_prob(), pyude.Tsit5(), backend="jula")


def test_throw_must_be_bool():
    with pytest.raises(TypeError, match="throw must be True or False"):
        pyude.solve(lv_prob(), pyude.Tsit5(), throw="no")


@pytest.mark.parametrize("solver", [pyude.Rodas5P(), pyude.KenCarp4(), pyude.AutoTsit5(
    pyude.Rosenbrock23())], ids=repr)
def test_stiff_solver_refuses_a_low_precision_state(solver):
    prob = lv_prob()
    half = pyude.ODEProblem(prob.f, prob.u0.to(torch.bfloat16), prob.tspan,
                            {k: v.to(torch.bfloat16) for k, v in prob.p.items()})
    with pytest.raises(ValueError, match="torch's linear algebra does not take torch.bfloat16"):
        pyude.solve(half, solver, rtol=0.1, atol=0.01)


def test_controller_validates_its_factors():
    with pytest.raises(ValueError, match="0 < qmin <= 1 <= qmax"):
        pyude.PIController(qmin=2.0)
    with pytest.raises(ValueError, match="0 < gamma <= 1"):
        pyude.PIController(gamma=1.5)
    with pytest.raises(ValueError, match="PredictiveController needs 0 < qmin <= 1 <= qmax"):
        pyude.PredictiveController(qmax=0.5)
    with pytest.raises(TypeError, match="unexpected keyword argument 'beta1'"):
        pyude.PredictiveController(beta1=0.2)


# --- the solution ------------------------------------------------------------------------

def test_dense_output_needs_dense():
    sol = pyude.solve(lv_prob(), pyude.Tsit5(), saveat=[1.0, 2.0])
    with pytest.raises(ValueError, match="keeps no dense output.*solve again without `saveat`"):
        sol(1.5)


def test_dense_output_does_not_extrapolate():
    sol = pyude.solve(lv_prob(tspan=(0.0, 1.0)), pyude.Tsit5())
    with pytest.raises(ValueError, match="outside the solved span"):
        sol(np.array([0.5, 2.0]))


# --- bad input found by the first-hour and adversarial review ------------------------------

def _lv():
    return pyude.problems.lotka_volterra_problem()


def test_span_too_narrow_for_its_times_is_refused():
    prob = pyude.ODEProblem(_lv().f, [1.0, 1.0], (1e15, 1e15 + 10), _lv().p)
    with pytest.raises(ValueError, match="floating-point steps of its times wide.*Shift time"):
        pyude.solve(prob, pyude.Tsit5())


def test_dense_output_at_nan_is_refused():
    sol = pyude.solve(_lv(), pyude.Tsit5())
    with pytest.raises(ValueError, match="sol\\(t\\) needs a finite time; got nan"):
        sol(float("nan"))


def test_direct_adjoint_refuses_to_differentiate_a_failed_solve():
    alpha = torch.tensor(1.5, dtype=torch.float64, requires_grad=True)
    prob = _lv().remake(p=dict(alpha=alpha, beta=1.0, gamma=3.0, delta=1.0))
    sol = pyude.solve(prob, pyude.Tsit5(), maxiters=3, throw=False)
    assert sol.retcode == pyude.ReturnCode.MaxIters
    with pytest.raises(RuntimeError, match="forward solve failed, so its gradient is undefined"):
        sol.u[-1].sum().backward()


def test_backsolve_refuses_a_problem_unstable_backwards():
    def lorenz(u, p, t):
        x, y, z = u
        return [p.s * (y - x), x * (p.r - z) - y, x * y - p.b * z]
    s = torch.tensor(10.0, dtype=torch.float64, requires_grad=True)
    prob = pyude.ODEProblem(lorenz, [1.0, 1.0, 1.0], (0.0, 1.0), dict(s=s, r=28.0, b=8 / 3))
    sol = pyude.solve(prob, pyude.Tsit5(), saveat=[1.0], rtol=1e-6, atol=1e-6,
                      sensealg=pyude.BacksolveAdjoint())
    with pytest.raises(pyude.SolverError, match="unstable backwards in time.*Interpolating"):
        sol.u.sum().backward()


def test_tspan_requiring_grad_is_refused():
    with pytest.raises(ValueError, match="tspan requires grad"):
        pyude.ODEProblem(_lv().f, [1.0, 1.0], torch.tensor([0.0, 1.0], requires_grad=True))


def test_repeated_tstops_and_t1_among_them_are_one_stop_each():
    sol = pyude.solve(_lv(), pyude.Tsit5(), tstops=[10.0, 5.0, 5.0])
    assert sol.success and 5.0 in sol.t.tolist()


def test_saveat_asking_for_too_many_states_is_refused_before_any_work():
    with pytest.raises(ValueError, match="asks for 1e\\+13 saved states"):
        pyude.solve(_lv(), pyude.Tsit5(), saveat=1e-12)


def test_dtmin_above_dtmax_is_refused():
    with pytest.raises(ValueError, match="dtmin=1.0 is larger than dtmax=0.1"):
        pyude.solve(_lv(), pyude.Tsit5(), dtmin=1.0, dtmax=0.1)


def test_empty_batch_is_refused():
    with pytest.raises(ValueError, match="an empty batch"):
        pyude.ODEProblem(_lv().f, torch.zeros(0, 2), (0.0, 1.0), _lv().p)


def test_f_returning_strings_is_named():
    prob = pyude.ODEProblem(lambda u, p, t: ["a", "b"], [1.0, 1.0], (0.0, 1.0))
    with pytest.raises(TypeError, match="component 0 as str 'a'"):
        pyude.solve(prob, pyude.Tsit5())


def test_numpy_float_dt_is_a_number():
    sol = pyude.solve(_lv(), pyude.RK4(), dt=np.float32(0.5))
    assert sol.success


def test_a_batch_names_the_trajectory_that_failed():
    def blows_up(u, p, t):
        return [u[0] ** 2 * p[0]]
    prob = pyude.ODEProblem(blows_up, [[1.0], [1.0]], (0.0, 2.0), torch.tensor([[0.1], [1e30]]))
    sol = pyude.solve(prob, pyude.Euler(), dt=0.5, throw=False)
    assert sol.retcode == pyude.ReturnCode.Unstable
    assert "in trajectory (1,) of the batch" in sol.message


def test_a_network_of_another_dtype_or_width_than_the_state_is_named():
    from torch import nn
    u0 = torch.ones(2, dtype=torch.float64)
    wide = pyude.NeuralODE(nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 3)).double())
    with pytest.raises(ValueError, match="must take and return 2 values.*first Linear takes 3"):
        wide(u0, [0.0, 1.0])
    single = pyude.NeuralODE(nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 2)))
    with pytest.raises(ValueError, match="weights are torch.float32 but the state is "
                                         "torch.float64.*net.double"):
        single(u0, [0.0, 1.0])
