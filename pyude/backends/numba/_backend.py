"""The numba backend's front: checks what it cannot take, then runs one trajectory, a batch,
or the solve with a gradient."""

from __future__ import annotations

import numpy as np
import torch

from ..._options import SolveOptions
from ..._problem import ODEProblem
from ..._solution import Solution
from ...solvers._base import AbstractSolver
from . import _loop as lp
from ._methods import pack_method
from ._model import compile_model, pack_params
from ._refuse import reason_not_compilable
from ._results import _batch_solution, _inputs, _single_solution


class NotCompilableError(ValueError):
    """The solve cannot run on the numba backend; the message says why and what to do."""


def solve(problem: ODEProblem, solver: AbstractSolver, options: SolveOptions,
          sensealg=None, *, checked: bool = False) -> Solution:
    """Solve on the numba backend with `solve`'s validated options (a `SolveOptions`).

    The model is traced and compiled (`reason_not_compilable` says when it cannot be, unless
    the caller has just `checked` it for these very arguments). A batched u0 is solved as
    independent trajectories in parallel and needs `saveat`.
    """
    reason = None if checked else reason_not_compilable(problem, solver, options, sensealg)
    if reason is not None:
        raise NotCompilableError(f"cannot solve on the numba backend: {reason}")
    from ._grad_model import needs_gradient, network_functions
    from ._gradient import solve_with_gradient
    if needs_gradient(problem):
        return solve_with_gradient(problem, solver, options, sensealg)
    if isinstance(problem.f, torch.nn.Module):        # a NeuralODE/UDE field
        functions, p_row = network_functions(problem)
        params = p_row[None, :]
    else:
        functions = compile_model(problem).functions
        params = pack_params(problem)
    u0 = np.ascontiguousarray(problem.u0.detach().reshape(-1, problem.n_states).numpy())
    method = pack_method(solver)
    if not problem.batch_shape:
        inputs = _inputs(problem, method, options, options.dense)
        result = lp.solve_one(*functions, params[0], u0[0], *inputs)
        return _single_solution(problem, solver, method, options, result)
    from ._batch import run_batch
    inputs = _inputs(problem, method, options, False)
    us, outs, infos = run_batch(*functions, params, u0, *inputs)
    return _batch_solution(problem, solver, options, us, outs, infos)
