"""Discovery problems: the known physics with network terms, and for the built-in ones the
true model that simulates the data; `load_problem` also reads a problem from a user's file."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import sympy

from ..discovery import DEFAULT_DEGREE, check_names
from ..problems import lotka_volterra_ude


@dataclass
class DiscoveryProblem:
    """A discovery experiment: the known physics with network terms and, for a built-in
    (simulated) problem, the true model that makes the data and that the report compares
    against. For your own data only the first five fields are needed.

    Example:
        def ude(u, p, t, nn):          # the same one model definition as everywhere
            x, y = u
            m1, m2 = nn(u)
            return [p.alpha * x + m1, -p.delta * y + m2]
        problem = DiscoveryProblem("predator_prey", ude, dict(alpha=1.3, delta=1.8),
                                   ["x", "y"], n_network_outputs=2)
    """

    name: str
    ude: Callable                     # f(u, p, t, nn): known physics + nn(u)
    known_p: dict[str, float]
    state_names: list[str]
    n_network_outputs: int
    degree: int = DEFAULT_DEGREE      # of the polynomial library for sparse regression
    truth: Callable | None = None     # f(u, p, t), when the data are simulated
    true_p: dict[str, float] = field(default_factory=dict)
    true_terms: list[sympy.Expr] = field(default_factory=list)  # what nn should become
    u0: list[float] | None = None
    t_end: float = 0.0
    dt_save: float = 0.1
    t_extrapolate: float = 0.0

    def __post_init__(self):
        if not callable(self.ude):
            raise TypeError(f"the problem {self.name!r}: ude must be a function "
                            f"f(u, p, t, nn); got {type(self.ude).__name__}")
        self.state_names = check_names(self.state_names, "state")
        check_names(self.known_p, "parameter", taken=self.state_names,
                    taken_as="a state's name")
        check_names(self.true_p, "true parameter", taken=self.state_names,
                    taken_as="a state's name")
        for field_name in ("n_network_outputs", "degree"):
            value = getattr(self, field_name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"the problem {self.name!r}: {field_name} must be a whole "
                                 f"number >= 1; got {value!r}")

    def truth_as_ude(self, u, p, t, nn_):
        """The true model in the UDE's call signature (no network outputs), for tracing."""
        return self.truth(u, p, t)


def _lv_truth(u, p, t):
    """The UDE paper's Lotka-Volterra in the UDE's parameter names (delta the predators'
    decay, as in `lotka_volterra_ude`; the library's `lotka_volterra` calls it gamma)."""
    x, y = u
    return [p.alpha * x - p.beta * x * y, p.gamma * x * y - p.delta * y]


def _oscillator_truth(u, p, t):
    x, v = u
    return [v, -p.k * x - p.c * v**3]


def _oscillator_ude(u, p, t, nn_):
    x, v = u
    (m,) = nn_(u)
    return [v, -p.k * x + m]


_X, _Y, _V = sympy.symbols("x y v", real=True)

PROBLEMS = {
    "lotka_volterra": DiscoveryProblem(
        "lotka_volterra", lotka_volterra_ude, dict(alpha=1.3, delta=1.8), ["x", "y"], 2,
        degree=2, truth=_lv_truth, true_p=dict(alpha=1.3, beta=0.9, gamma=0.8, delta=1.8),
        true_terms=[-0.9 * _X * _Y, 0.8 * _X * _Y], u0=[0.44249296, 4.6280594], t_end=3.0,
        t_extrapolate=20.0),
    "cubic_friction": DiscoveryProblem(
        "cubic_friction", _oscillator_ude, dict(k=1.0), ["x", "v"], 1, degree=3,
        truth=_oscillator_truth, true_p=dict(k=1.0, c=0.3), true_terms=[-0.3 * _V**3],
        u0=[2.0, 0.0], t_end=10.0, t_extrapolate=30.0),
}


def load_problem(name: str | DiscoveryProblem) -> DiscoveryProblem:
    """A built-in problem by name, or `path/to/file.py:NAME` for a `DiscoveryProblem`
    defined in your own file."""
    if isinstance(name, DiscoveryProblem):
        return name
    if name in PROBLEMS:
        return PROBLEMS[name]
    if ":" not in name:
        raise ValueError(f"unknown problem {name!r}; built-in problems: "
                         f"{', '.join(PROBLEMS)}; or give path/to/file.py:NAME for a "
                         f"DiscoveryProblem of your own")
    import importlib.util
    path, attr = name.rsplit(":", 1)
    if not Path(path).is_file():
        raise FileNotFoundError(f"no Python file at {path} (from the problem {name!r})")
    module_spec = importlib.util.spec_from_file_location(Path(path).stem, path)
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except SyntaxError as err:
        raise ValueError(f"{path} is not valid Python: {err.msg} (line {err.lineno})") \
            from err
    except Exception as err:
        raise ValueError(f"{path} raised {type(err).__name__} while being imported: {err}; "
                         f"run `python {path}` to see where") from err
    problem = getattr(module, attr, None)
    if not isinstance(problem, DiscoveryProblem):
        raise TypeError(f"{path} has no DiscoveryProblem named {attr!r} (found "
                        f"{type(problem).__name__}); define one with "
                        f"pyude.pipeline.DiscoveryProblem(name, ude, known_p, state_names, "
                        f"n_network_outputs)")
    return problem
