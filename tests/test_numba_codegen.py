"""Generated model code: the right-hand side, analytic Jacobian and df/dt against torch, and
the on-disk cache (hit in a second process, a new entry when the generating source
changes)."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

import pyude
from pyude import ops
from pyude.backends.numba import _cache
from pyude.backends.numba._model import compile_model, pack_params
from pyude._model import RHS
from pyude.problems import BUILTIN


ROOT = Path(__file__).resolve().parents[1]


def _torch_rhs(problem):
    rhs = RHS(problem.f, problem.p)
    return lambda t, u: rhs(t, u)


def _compiled(problem):
    module = compile_model(problem).module
    rhs, jac, dfdt = module.rhs, module.jac, module.dfdt
    p = pack_params(problem)[0]
    return rhs, jac, dfdt, p


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_generated_functions_equal_torch_and_its_autodiff_jacobian(name):
    problem = BUILTIN[name].factory()
    rhs, jac, _, p = _compiled(problem)
    gen = torch.Generator().manual_seed(0)
    u = problem.u0 + 0.1 * torch.rand(problem.u0.shape, generator=gen, dtype=torch.float64)
    f = _torch_rhs(problem)
    n = problem.n_states
    out, J = np.empty(n), np.empty((n, n))
    rhs(0.3, u.numpy().copy(), p, out)
    jac(0.3, u.numpy().copy(), p, J)
    expected_J = torch.autograd.functional.jacobian(lambda x: f(0.3, x), u)
    np.testing.assert_allclose(out, f(0.3, u).numpy(), rtol=1e-13, atol=1e-300)
    np.testing.assert_allclose(J, expected_J.numpy(), rtol=1e-12, atol=1e-12 * np.abs(J).max())


def _forced(u, p, t):
    x, y = u
    return [y * ops.exp(-t), -p[0] * ops.sin(x * t) + ops.softplus(y) + ops.sqrt(t + 1.0)]


def test_time_derivative_and_table_helpers():
    problem = pyude.ODEProblem(_forced, [0.4, -0.2], (0.0, 1.0), [1.5])
    compiled = compile_model(problem)
    assert compiled.reads_t and "def _py_softplus" in compiled.source
    rhs, jac, dfdt, p = _compiled(problem)
    u = problem.u0.clone()
    f = _torch_rhs(problem)
    t = torch.tensor(0.7, dtype=torch.float64)
    expected = torch.autograd.functional.jacobian(lambda s: f(s, u), t)
    out = np.empty(2)
    dfdt(0.7, u.numpy().copy(), p, out)
    np.testing.assert_allclose(out, expected.numpy(), rtol=1e-12)
    J = np.empty((2, 2))
    jac(0.7, u.numpy().copy(), p, J)
    np.testing.assert_allclose(
        J, torch.autograd.functional.jacobian(lambda x: f(0.7, x), u).numpy(), rtol=1e-12)


def test_parameters_are_read_at_run_time():
    """A new p reuses the compiled code: the source has no parameter values in it."""
    a = pyude.problems.rober_problem()
    b = a.remake(p=dict(k1=0.5, k2=1.0, k3=2.0))
    assert compile_model(a) is compile_model(b)
    assert "3e7" not in compile_model(a).source and "30000000.0" not in compile_model(a).source
    assert "p[1]" in compile_model(a).source


def test_untranslatable_jacobian_refuses_only_stiff_solvers():
    def with_abs(u, p, t):
        (x,) = u
        return [-ops.abs(x)]
    problem = pyude.ODEProblem(with_abs, [1.0], (0.0, 1.0))
    from pyude.backends.numba import NumbaBackend
    backend = NumbaBackend()
    assert backend.reason_not_compilable(problem, pyude.Tsit5()) is None
    assert "Jacobian cannot be printed" in backend.reason_not_compilable(problem,
                                                                         pyude.Rodas5P())


def test_cache_key_follows_the_source_and_the_versions(monkeypatch):
    key = _cache.source_key("x = 1\n")
    assert _cache.source_key("x = 2\n") != key
    monkeypatch.setattr(_cache.numba, "__version__", "0.0.0")
    assert _cache.source_key("x = 1\n") != key


_SCRIPT = textwrap.dedent("""
    import json, sys
    import pyude
    from pyude import ops
    from pyude.backends.numba import _loop
    from pyude.backends.numba._model import compile_model

    SCALE = float(sys.argv[1])

    def model(u, p, t):
        x, y = u
        return [y, -p[0] * ops.sin(x) * SCALE]

    prob = pyude.ODEProblem(model, [1.0, 0.0], (0.0, 3.0), [2.0])
    sol = pyude.solve(prob, pyude.Rodas5P(), rtol=1e-6, backend="numba")
    module = compile_model(prob).module
    stats = {name: getattr(module, name).stats for name in ("rhs", "jac", "dfdt")}
    print(json.dumps({
        "hits": {k: sum(s.cache_hits.values()) for k, s in stats.items()},
        "misses": {k: sum(s.cache_misses.values()) for k, s in stats.items()},
        "kernel_misses": sum(_loop.solve_one.stats.cache_misses.values()),
        "u": sol.u[-1].tolist(),
    }))
""")


def _run(cache: Path, scale: str) -> dict:
    env = dict(os.environ, PYUDE_CACHE_DIR=str(cache), PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", _SCRIPT, scale], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _files(cache: Path) -> set:
    return {p.relative_to(cache) for p in cache.rglob("*") if p.is_file()}


def test_second_process_compiles_nothing_and_a_new_source_is_a_new_entry(tmp_path):
    first = _run(tmp_path, "1.0")
    assert sum(first["misses"].values()) == 3           # rhs, jac and dfdt compiled
    files = _files(tmp_path)
    assert any(str(f).endswith(".nbi") for f in files)  # numba's index beside the module
    second = _run(tmp_path, "1.0")
    assert second["misses"] == {"rhs": 0, "jac": 0, "dfdt": 0}
    assert all(v >= 1 for v in second["hits"].values())
    assert second["kernel_misses"] == 0
    assert _files(tmp_path) == files                    # nothing new written
    assert second["u"] == first["u"]
    changed = _run(tmp_path, "2.0")                     # another source: another module
    assert sum(changed["misses"].values()) == 3
    modules = [f for f in _files(tmp_path) if f.suffix == ".py"]
    assert len(modules) == 2


def test_cache_folder_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("PYUDE_CACHE_DIR", str(tmp_path / "mine"))
    assert _cache.cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("PYUDE_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert _cache.cache_dir() == tmp_path / "xdg" / "pyude"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert _cache.cache_dir() == Path.home() / ".cache" / "pyude"


def test_kernels_are_stamped_with_the_whole_package(tmp_path):
    """A cached kernel is invalidated when any module of the backend changes, not only its
    own file (numba's rule), so it never keeps an older copy of a function it calls."""
    from pyude.backends.numba import _loop, _stamp
    assert isinstance(_loop.solve_one._cache._impl.locator, _stamp.PackageStampLocator)
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "b.py").write_text("y = 1\n")
    before = _stamp.package_stamp(tmp_path)
    (tmp_path / "b.py").write_text("y = 2\n")
    assert _stamp.package_stamp(tmp_path) != before


def test_a_slow_first_load_of_the_kernels_says_why():
    """Compiling the kernels takes about 20 s the first time on a machine; past a few
    seconds the user is told (simulated here by a threshold below the import's time)."""
    code = textwrap.dedent("""
        import pyude
        from pyude.backends import _compiled
        _compiled.NOTICE_AFTER_S = 0.001
        prob = pyude.problems.lotka_volterra_problem()
        print(pyude.solve(prob, pyude.Tsit5(), backend="numba").retcode.name)
    """)
    out = subprocess.run([sys.executable, "-W", "always", "-c", code], capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "Success"
    assert "CompileNotice: compiling pyude's numba kernels" in out.stderr
