"""One model, three uses: torch, sympy tracing and Julia printing agree."""

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import sympy
import torch

import pyude
from pyude import ops
from pyude.problems import BUILTIN
from pyude.symbolic import sigmoid, softplus, to_julia, to_torch, trace

ROOT = Path(__file__).resolve().parents[1]


def every_op(u, p, t):
    x, y, z = u
    return [
        ops.exp(-x) + ops.log(1 + y**2) - ops.sin(z) * ops.cos(t),
        ops.tan(x / 4) + ops.tanh(y) * ops.sqrt(1 + z**2) - ops.abs(x - y) ** 1.5,
        ops.sigmoid(p.a * x) + ops.softplus(y) + ops.min(x, y) - ops.max(y, z) / p.b + 2 / x,
    ]


def _plain(e):
    """sigmoid and softplus spelled out, so sympy evaluates them on its own."""
    e = e.replace(sigmoid, lambda x: 1 / (1 + sympy.exp(-x)))
    return e.replace(softplus, lambda x: sympy.log(1 + sympy.exp(x)))


def _torch_rhs(f, u, p, t):
    prob = pyude.ODEProblem(f, u, (0.0, 1.0), p)
    rhs = pyude._model.RHS(prob.f, prob.p)
    return rhs.first_call(t, prob.u0)


def _models():
    out = {name: (b.model, b.factory()) for name, b in BUILTIN.items()}
    rng = np.random.default_rng(0)
    out["every_op"] = (every_op, pyude.ODEProblem(every_op, rng.uniform(0.5, 1.5, 3), (0, 1),
                                                  dict(a=0.7, b=2.0)))
    return out


@pytest.mark.parametrize("name", list(_models()))
def test_traced_expressions_equal_the_torch_evaluation(name):
    model, prob = _models()[name]
    traced = trace(model, prob.n_states, prob.p)
    rng = np.random.default_rng(1)
    u = torch.as_tensor(rng.uniform(0.5, 1.5, (7, prob.n_states)))
    t = 0.3
    expected = _torch_rhs(model, u, prob.p, t)
    pvals = [] if prob.p is None else [v for v in (prob.p if isinstance(prob.p, pyude.Params)
                                                   else prob.p.unbind(-1))]
    # sympy's own numeric evaluation, independent of pyude's torch evaluator
    for row in range(u.shape[0]):
        subs = {s: float(v) for s, v in zip(traced.states, u[row])}
        subs.update({s: float(v) for s, v in zip(traced.params, pvals)})
        subs[traced.t] = t
        got = [float(_plain(e).evalf(subs=subs)) for e in traced.exprs]
        np.testing.assert_allclose(got, expected[row].numpy(), rtol=1e-12)
    # pyude's sympy -> torch evaluator, batched
    fn = to_torch(traced.exprs, traced.symbols)
    out = fn(*u.unbind(-1), *pvals, t)
    got = torch.stack(torch.broadcast_tensors(*[torch.as_tensor(o, dtype=u.dtype)
                                                 for o in out]), -1)
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-12)


def test_traced_lotka_volterra_reads_like_the_equations():
    traced = trace(pyude.problems.lotka_volterra, 2, dict(alpha=1, beta=1, gamma=1, delta=1),
                   state_names=["x", "y"])
    x, y, a, b, c, d = sympy.symbols("x y alpha beta gamma delta", real=True)
    assert traced.exprs == [a * x - b * x * y, -c * y + d * x * y]


def test_nn_becomes_output_symbols():
    def ude(u, p, t, nn):
        x, y = u
        m1, m2 = nn(u)
        return [p[0] * x + m1, -p[1] * y + m2]

    traced = trace(ude, 2, [1.3, 1.8], nn_outputs=2)
    nn1, nn2 = traced.nn_outputs
    u1, u2 = traced.states
    p1, p2 = traced.params
    assert traced.exprs == [p1 * u1 + nn1, -p2 * u2 + nn2]
    assert traced.nn.inputs == [[u1, u2]]
    src = to_julia(traced, "ude")
    assert "function ude(u, p, t, nn_out)" in src and "nn1 = nn_out[1]" in src


def test_julia_source_of_lotka_volterra():
    traced = trace(pyude.problems.lotka_volterra, 2, dict(alpha=1, beta=1, gamma=1, delta=1),
                   state_names=["x", "y"])
    assert to_julia(traced, "lotka_volterra") == (
        "function lotka_volterra(u, p, t)\n"
        "    x = u[1]\n    y = u[2]\n"
        "    alpha = p[1]\n    beta = p[2]\n    gamma = p[3]\n    delta = p[4]\n"
        "    return [\n"
        "        ((alpha * x) + (-(beta * x * y))),\n"
        "        ((-(gamma * y)) + (delta * x * y)),\n"
        "    ]\nend\n")


def test_julia_names_that_would_clash_are_renamed():
    traced = trace(lambda u, p, t: [p.end * u[0]], 1, {"end": 2.0})
    assert "end_ = p[1]" in to_julia(traced)


def fatou_lint(files: list[Path]) -> subprocess.CompletedProcess:
    beside = Path(sys.executable).with_name("fatou")
    exe = str(beside) if beside.exists() else shutil.which("fatou")
    if exe is None:
        pytest.fail("fatou is not installed; `pip install -e .[test]` installs it")
    return subprocess.run([exe, "lint", "--output", "concise", *map(str, files)],
                          capture_output=True, text=True, timeout=60)


def test_generated_julia_passes_fatou_lint(tmp_path):
    shutil.copy(ROOT / "fatou.toml", tmp_path / "fatou.toml")
    files = []
    for name, (model, prob) in _models().items():
        src = to_julia(trace(model, prob.n_states, prob.p), name)
        files.append(tmp_path / f"{name}.jl")
        files[-1].write_text(src)
    result = fatou_lint(files)
    assert result.returncode == 0, result.stdout + result.stderr


def test_fatou_config_catches_undefined_names(tmp_path):
    """The lint configuration is strict enough to fail on a name the code never defined."""
    shutil.copy(ROOT / "fatou.toml", tmp_path / "fatou.toml")
    bad = tmp_path / "bad.jl"
    bad.write_text("function f(u, p, t)\n    x = u[1]\n    return [x * undefined_rate]\nend\n")
    result = fatou_lint([bad])
    assert result.returncode != 0 and "undefined" in result.stdout + result.stderr


# --- error paths ---------------------------------------------------------------------------

def test_unsupported_operation_names_it_and_the_table():
    traced = trace(lambda u, p, t: [sympy.erf(u[0])], 1)
    with pytest.raises(pyude.UnsupportedOperationError, match="`erf`.*_ops.py"):
        to_julia(traced)
    with pytest.raises(pyude.UnsupportedOperationError, match="`erf`.*OPS"):
        to_torch(traced.exprs, traced.symbols)(torch.ones(1), 0.0)


def test_torch_functions_in_a_model_get_a_hint_under_tracing():
    with pytest.raises(TypeError, match="write the model with `pyude.ops`"):
        trace(lambda u, p, t: [torch.exp(u[0])], 1)


def test_tracing_needs_a_list_of_components():
    with pytest.raises(TypeError, match="must return a list of 1 components"):
        trace(lambda u, p, t: u[0], 1)
    with pytest.raises(ValueError, match="returned 2 components for 1 states"):
        trace(lambda u, p, t: [u[0], u[0]], 1)


def test_a_ude_needs_nn_outputs_to_trace():
    with pytest.raises(ValueError, match="pass nn_outputs="):
        trace(lambda u, p, t, nn: [nn(u)[0]], 1)


def test_nn_may_be_called_once():
    def twice(u, p, t, nn):
        return [nn(u)[0] + nn(u)[0]]

    with pytest.raises(ValueError, match="calls nn\\(...\\) more than once"):
        trace(twice, 1, nn_outputs=1)


def test_state_names_must_match():
    with pytest.raises(ValueError, match="state_names has 1 names for 2 states"):
        trace(pyude.problems.lotka_volterra, 2, dict(alpha=1, beta=1, gamma=1, delta=1),
              state_names=["x"])


def test_ops_work_on_floats_tensors_and_symbols():
    x = sympy.Symbol("x")
    assert ops.exp(0.0) == 1.0
    assert torch.equal(ops.max(torch.tensor([1.0, 3.0]), 2.0), torch.tensor([2.0, 3.0]))
    assert ops.softplus(x).diff(x) == ops.sigmoid(x)
    assert abs(ops.softplus(-800.0)) < 1e-300 and ops.softplus(800.0) == 800.0
