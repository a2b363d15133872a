"""What the numba backend cannot take, each answered before any work with what is wrong,
why, and the fix: `reason_not_compilable` is also the `backend="auto"` rule."""

from __future__ import annotations

from torch import nn

from ..._problem import ODEProblem
from .._compiled import input_reason
from ...solvers._base import AbstractSolver

def _input_reason(problem: ODEProblem) -> str | None:
    reason = input_reason(problem)                # the checks that need no kernel
    if reason is None and isinstance(problem.f, nn.Module):
        from ._grad_model import compiled_network_reason
        reason = compiled_network_reason(problem)
    return reason


def _model_reason(problem: ODEProblem, solver: AbstractSolver) -> str | None:
    from ._model import compile_model
    if isinstance(problem.f, nn.Module):       # a NeuralODE/UDE field: checked above
        return None
    try:
        compiled = compile_model(problem)
    except Exception as err:          # any failure to trace or print is a reason
        return (f"the model does not trace to a compilable form ({type(err).__name__}: "
                f"{err}); write f with pyude.ops and without Python branches on the state "
                f"or parameters, or use backend='native'")
    from ._methods import needs_jacobian
    if needs_jacobian(solver) and compiled.jac_error:
        return (f"the model's Jacobian cannot be printed, and {solver!r} needs it "
                f"({compiled.jac_error}); use an explicit solver such as Tsit5(), or "
                f"backend='native', whose stiff solvers differentiate f by autodiff")
    return None


def reason_not_compilable(problem: ODEProblem, solver: AbstractSolver,
                          options=None, sensealg=None) -> str | None:
    """Why this solve cannot run on the numba backend, or None when it can. Compiles the
    model on the way (which the solve then reuses). With inputs that require grad, the
    gradient's own conditions too (`sensealg`, the solver family, batched parameters)."""
    reason = _input_reason(problem)
    if reason is not None:
        return reason
    from ._grad_model import needs_gradient
    from ._gradient import GradientNotSupported, gradient_refusal
    if needs_gradient(problem):
        try:
            gradient_refusal(sensealg, solver, problem, options)
        except GradientNotSupported as err:
            return str(err)
    from ._methods import supported
    if not supported(solver):
        return (f"the numba backend has no kernel for {solver!r}; it takes pyude's explicit "
                f"Runge-Kutta, Rosenbrock and ESDIRK methods and their automatic switches; "
                f"use backend='native' for {solver!r}")
    if options is not None and getattr(options, "on_step", None) is not None:
        return "a per-step callback runs in Python; use backend='native'"
    if len(problem.batch_shape) and options is not None and options.saveat is None:
        return ("a batch on the numba backend solves every trajectory with its own steps, "
                "so the trajectories share no step times to save at; pass `saveat` (times or "
                "a spacing), or solve the trajectories one by one for their dense output")
    if len(problem.batch_shape) and options is not None and options.dense:
        return ("a batch on the numba backend keeps no dense output (each trajectory has its "
                "own steps); drop `dense=True` and read the `saveat` times, or solve the "
                "trajectories one by one for sol(t)")
    return _model_reason(problem, solver)
