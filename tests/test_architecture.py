"""The shape of the house: no import cycles, small modules, capabilities declared on the
classes, and one front door (`solve`) handing every backend the same checked options."""

import ast
import dataclasses
from pathlib import Path

import pytest
import torch

import pyude
from helpers import SOLVERS, ids

PACKAGE = Path(pyude.__file__).parent
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    mods = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        mods[name] = path
    return mods


def _imports(name: str, path: Path, mods: dict[str, Path]) -> set[str]:
    """Every module of the package that `name` imports, at any depth of its code; `from
    pkg import sub` counts `pkg.sub` only (the package is already being imported)."""
    out = set()
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            subs = {f"{target}.{a.name}" for a in node.names} & set(mods)
            out |= subs or {target}
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
    return (out & set(mods)) - {name}


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while not comp or comp[-1] != v:
                comp.append(stack.pop())
                on.discard(comp[-1])
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in edges:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles():
    mods = _modules()
    edges = {name: _imports(name, path, mods) for name, path in mods.items()}
    assert _cycles(edges) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_module_is_over_400_lines():
    sizes = {str(p.relative_to(PACKAGE)): len(p.read_text().splitlines())
             for p in PACKAGE.rglob("*.py")}
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}


@pytest.mark.parametrize("entry", SOLVERS, ids=ids(SOLVERS))
def test_capabilities_are_declared_on_the_solver_classes(entry):
    solver = entry.solver
    assert solver.implicit == isinstance(solver, pyude.solvers.AbstractImplicitSolver)
    assert solver.with_autodiff(False) == (
        dataclasses.replace(solver, autodiff=False) if solver.implicit else solver)


def test_stability_size_marks_the_methods_that_can_detect_stiffness():
    assert pyude.Tsit5().stability_size == 3.5068
    assert pyude.Vern7().stability_size == 4.64
    with pytest.raises(ValueError, match="known stability region"):
        pyude.AutoSwitch(pyude.BS3(), pyude.Rodas5P())


def test_adjoint_solver_keeps_every_setting_of_a_composite():
    from pyude.sensitivity._adjoint import adjoint_solver
    solver = pyude.AutoTsit5(pyude.Rodas5P(), maxstiffstep=5, stifftol=0.5, dtfac=3.0,
                             stiffalgfirst=True)
    assert adjoint_solver(solver) == dataclasses.replace(solver,
                                                         stiff=pyude.Rodas5P(autodiff=False))


def test_every_backend_gets_the_same_checked_options(monkeypatch):
    """The front door validates once and hands the backend a SolveOptions."""
    from pyude import backends
    seen = {}

    def record(problem, solver, options, sensealg):
        seen.update(options=options, sensealg=sensealg)
        return backends.BACKENDS["native"].__class__().solve(problem, solver, options,
                                                             sensealg)

    monkeypatch.setattr(backends.BACKENDS["native"], "solve", record)
    prob = pyude.problems.lotka_volterra_problem()
    pyude.solve(prob, pyude.Tsit5(), saveat=[0.0, 1.0], dtmax=0.5, rtol=1e-5,
                backend="native")
    options = seen["options"]
    assert (options.saveat, options.dtmax, options.rtol) == ([0.0, 1.0], 0.5, 1e-5)
    assert options.given == {"saveat", "dtmax"}
    assert isinstance(seen["sensealg"], pyude.DirectAdjoint)


def test_stats_add_up():
    a = pyude.Stats(nf=3, naccept=2, nreject=1, njacs=1, nw=1, nsolve=2)
    assert a + a == pyude.Stats(nf=6, naccept=4, nreject=2, njacs=2, nw=2, nsolve=4)


def test_solution_is_built_from_keywords():
    t, u = torch.zeros(1), torch.zeros(1, 2)
    with pytest.raises(TypeError):
        pyude.Solution(t, u)             # positional arguments are refused


def test_auto_takes_the_compiled_backend_where_the_model_qualifies_and_says_so(monkeypatch):
    from pyude import backends
    monkeypatch.setattr(backends, "_ANNOUNCED", set())
    prob = pyude.problems.lotka_volterra_problem()
    with pytest.warns(backends.BackendNotice, match="solves on the numba backend$"):
        sol = pyude.solve(prob, pyude.Tsit5(), saveat=[1.0], backend="auto")
    assert sol.success and sol.retcodes is not None        # per-trajectory codes: numba's
    float32 = prob.remake(u0=torch.ones(2))
    with pytest.warns(backends.BackendNotice, match="native backend: .*float64 only"):
        assert pyude.solve(float32, pyude.Tsit5(), saveat=[1.0], backend="auto").success


def test_a_backend_named_explicitly_refuses_what_it_cannot_take():
    prob = pyude.problems.lotka_volterra_problem().remake(u0=torch.ones(2))
    with pytest.raises(ValueError, match="numba backend: u0 is torch.float32"):
        pyude.solve(prob, pyude.Tsit5(), backend="numba")


def test_auto_passes_a_float32_model_over_without_loading_the_kernels():
    import subprocess
    import sys
    code = ("import sys, warnings, torch, pyude; warnings.simplefilter('ignore'); "
            "prob = pyude.problems.lotka_volterra_problem().remake(u0=torch.ones(2)); "
            "print(pyude.solve(prob, pyude.Tsit5(), saveat=[1.0]).success, "
            "'numba' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["True", "False"]
