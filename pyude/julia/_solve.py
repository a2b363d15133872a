"""Solves on the Julia backend, with gradients back into torch through one autograd.Function.

The entry point is `solve(problem, solver, options, sensealg)`: `options` is the validated
options object every backend receives (`pyude._options.SolveOptions`). What OrdinaryDiffEq can
honour crosses as `solve` keywords (`solve_options`); what it cannot is refused with a
ValueError before Julia starts (`check`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .._model import Params
from .._retcode import ReturnCode
from .._solution import Solution, Stats
from ._compiled import compiled
from ._runtime import init

_CALL = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\(\)$")


def _refuse(option: str, why: str) -> ValueError:
    return ValueError(f"backend='julia' does not take {option}: {why}; use backend='native' "
                      f"for it")


def algorithm_call(solver) -> tuple:
    """(PyUDE function name, arguments) that build the solver's OrdinaryDiffEq algorithm,
    read from the solver's `julia_name` (and an automatic switch's settings)."""
    from ..solvers._autoswitch import AutoSwitch
    if isinstance(solver, AutoSwitch):
        return ("auto_switch", _plain_name(solver.nonstiff), _plain_name(solver.stiff),
                _autodiff(solver.stiff), int(solver.maxstiffstep), int(solver.maxnonstiffstep),
                float(solver.nonstifftol), float(solver.stifftol), float(solver.dtfac),
                bool(solver.stiffalgfirst))
    return ("algorithm", _plain_name(solver), _autodiff(solver))


def _autodiff(solver) -> bool:
    """Whether a stiff method's Jacobian is taken by ForwardDiff (else finite differences)."""
    from ..solvers._base import AbstractImplicitSolver
    return bool(solver.autodiff) if isinstance(solver, AbstractImplicitSolver) else True


def _plain_name(solver) -> str:
    match = _CALL.match(getattr(solver, "julia_name", ""))
    if match is None:
        raise _refuse(f"the solver {solver!r}", f"its Julia form "
                      f"{getattr(solver, 'julia_name', None)!r} is not an algorithm PyUDE builds")
    return match.group(1)


def sensitivity_name(sensealg) -> str:
    """SciMLSensitivity's name for `sensealg` (its `julia_name`)."""
    name = getattr(sensealg, "julia_name", None)
    if not name:
        raise _refuse(f"sensealg={sensealg!r}", "it has no SciMLSensitivity counterpart")
    return name


def check(problem, solver, options, sensealg) -> None:
    """Refuse, before any work, what the Julia backend cannot honour."""
    from ..controllers import PIController

    if options.controller != PIController().for_solver(solver):
        raise _refuse("controller", "OrdinaryDiffEq's own PI controller chooses the steps there")
    if options.dense and options.saveat is not None:
        raise _refuse("dense=True with saveat", "it returns the saved states, without an "
                      "interpolant")
    if options.saveat is None and problem.u0.ndim > 1:
        raise _refuse("a batch without saveat", "each trajectory is solved separately, so "
                      "their steps differ; give saveat")
    algorithm_call(solver)
    sensitivity_name(sensealg)


def solve_options(options) -> dict:
    """The positional arguments of `PyUDE.solve_options`, in order: empty `saveat` saves
    every step, zero `dt`/`dtmin` leave them to OrdinaryDiffEq. OrdinaryDiffEq turns a
    positive `dtmax`, and an adaptive solve's positive `dt`, to the direction of time (in the
    forward solve and in the adjoint's reverse one, which inherits them; a signed `dt` there
    runs the wrong way, DifferentialEquations.jl issue 707); a fixed-step `dt` it takes as
    given, so that one carries the direction."""
    tdir = options.tdir if not options.adaptive else 1.0
    atol = options.atol.detach().cpu().reshape(-1).tolist() if isinstance(options.atol, Tensor) \
        else [float(options.atol)]
    return dict(
        saveat=np.asarray(options.saveat or [], dtype=np.float64),
        abstol=np.asarray(atol, dtype=np.float64),
        reltol=float(options.rtol), maxiters=int(options.maxiters),
        dt=0.0 if options.dt is None else tdir * abs(float(options.dt)),
        dtmin=abs(float(options.dtmin or 0.0)), dtmax=abs(float(options.dtmax)),
        adaptive=bool(options.adaptive),
        tstops=np.asarray(options.tstops or [], dtype=np.float64))


def flat_parameters(p: Any) -> Tensor:
    """The problem's parameters as one 1-D tensor, in the order the generated code reads."""
    if p is None:
        return torch.zeros(0, dtype=torch.float64)
    values = list(p) if isinstance(p, Params) else [p]
    parts = []
    for v in values:
        if isinstance(p, Params) and v.ndim > 0:
            raise ValueError("the Julia backend takes one value per named parameter; batched "
                             "parameters run on backend='native'")
        parts.append(v.reshape(-1))
    if isinstance(p, Tensor) and p.ndim > 1:
        raise ValueError("the Julia backend takes a 1-D parameter vector; batched parameters "
                         "run on backend='native'")
    if not parts:
        return torch.zeros(0, dtype=torch.float64)
    return torch.cat([x.to(torch.float64).cpu() for x in parts])


def model_rhs(jl, problem) -> tuple[Any, Tensor]:
    """(Julia right-hand side, flat parameters) for a plain model or a NeuralODE/UDE field."""
    from .._field import VectorField
    if isinstance(problem.f, VectorField):
        from ._modules import field_rhs
        return field_rhs(jl, problem.f, problem.n_states)
    from ..symbolic import to_julia, trace
    src = to_julia(trace(problem.f, problem.n_states, problem.p), "pyude_rhs")
    rhs = compiled(("rhs", src), lambda: jl.ode_rhs(jl.define_rhs(src, "pyude_rhs")))
    return rhs, flat_parameters(problem.p)


@dataclass
class JuliaCall:
    """One Julia solve: right-hand side, algorithm, sensitivity, `solve` keywords, span."""

    rhs: Any
    algorithm: Any
    sensealg: Any
    options: Any
    t0: float
    t1: float
    tdir: float


def _order(times: np.ndarray, tdir: float) -> np.ndarray:
    """The permutation that puts Julia's saved times in the direction of the solve
    (SciMLSensitivity sorts saveat ascending, also for backward solves)."""
    return np.argsort(tdir * times, kind="stable")


def _run(jl, call: JuliaCall, u0: np.ndarray, theta: np.ndarray, grad: bool):
    args = (call.rhs, u0, call.t0, call.t1, theta, call.algorithm)
    if grad:
        ys, ts, retcode, stats, back = jl.solve_pullback(*args, call.sensealg, call.options)
    else:
        (ys, ts, retcode, stats), back = jl.solve_forward(*args, call.options), None
    states = np.array(np.asarray(ys).T, dtype=np.float64).reshape(-1, u0.shape[0])
    times = np.array(np.asarray(ts), dtype=np.float64).reshape(-1)[:states.shape[0]]
    perm = _order(times, call.tdir)
    info = dict(times=times[perm], retcode=str(retcode), stats=tuple(int(s) for s in stats))
    return states[perm], perm, info, back


class _JuliaSolve(torch.autograd.Function):
    """forward: the Julia solve under a pullback; backward: SciMLSensitivity's pullback."""

    @staticmethod
    def forward(ctx, call: JuliaCall, info: dict, u0: Tensor, theta: Tensor):
        states, perm, out, back = _run(init(), call, _np(u0), _np(theta), grad=True)
        info.update(out)
        ctx.back, ctx.perm, ctx.retcode = back, perm, out["retcode"]
        ctx.sizes = (u0.numel(), theta.numel())
        return torch.from_numpy(states).to(dtype=u0.dtype)

    @staticmethod
    def backward(ctx, grad_states: Tensor):
        if ctx.back is None:
            raise RuntimeError(f"no gradient: the Julia solve ended {ctx.retcode}, so "
                               f"SciMLSensitivity built no pullback; make the solve succeed "
                               f"(see its retcode and message) before differentiating it")
        grad = grad_states.detach().cpu().numpy().astype(np.float64)
        julia_order = np.empty_like(grad)
        julia_order[ctx.perm] = grad
        du0, dp = init().apply_pullback(ctx.back, np.asfortranarray(julia_order.T), *ctx.sizes)
        g_u0 = torch.from_numpy(np.array(np.asarray(du0), dtype=np.float64))
        g_p = torch.from_numpy(np.array(np.asarray(dp), dtype=np.float64))
        return None, None, g_u0.to(grad_states), g_p.to(grad_states)


def _np(x: Tensor) -> np.ndarray:
    return np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float64)


def _solve_row(call: JuliaCall, row: Tensor, theta: Tensor) -> tuple[Tensor, dict]:
    """One trajectory, through the autograd Function only when a gradient can be asked for."""
    info: dict = {}
    if torch.is_grad_enabled() and (row.requires_grad or theta.requires_grad):
        states = _JuliaSolve.apply(call, info, row.cpu(), theta.cpu())
    else:
        out, _, info, _ = _run(init(), call, _np(row), _np(theta), grad=False)
        states = torch.from_numpy(out).to(dtype=row.dtype)
    return states.to(device=row.device), info


def _common_prefix(infos: list[dict]) -> int:
    """How many leading saved times every trajectory shares (all of them when they agree)."""
    length = min(len(i["times"]) for i in infos)
    ref = infos[0]["times"]
    for i in infos[1:]:
        same = np.isclose(i["times"][:length], ref[:length], rtol=1e-14, atol=0.0)
        length = int(np.argmin(same)) if not same.all() else length
    return length


def run(call: JuliaCall, u0: Tensor, theta: Tensor, solver) -> Solution:
    """Solve every trajectory of a batch (one Julia solve each) and assemble a Solution at
    the times Julia returned."""
    flat_u0 = u0.reshape(-1, u0.shape[-1])
    rows = [_solve_row(call, row, theta) for row in flat_u0]
    infos = [info for _, info in rows]
    bad = next((i for i in infos if i["retcode"] != "Success"), None)
    retcode = ReturnCode.Success if bad is None else \
        getattr(ReturnCode, bad["retcode"], ReturnCode.Failure)
    stats = sum((Stats(*i["stats"]) for i in infos), Stats())
    length = _common_prefix(infos)
    u = torch.stack([s[:length] for s, _ in rows], dim=1).reshape(length, *u0.shape)
    t = torch.as_tensor(infos[0]["times"][:length].copy(), dtype=u0.dtype, device=u0.device)
    message = retcode.value if bad is None else (
        f"Julia returned {bad['retcode']}. {retcode.value}")
    return Solution(t=t, u=u, retcode=retcode, message=message, stats=stats, solver=solver)


def solve(problem, solver, options, sensealg) -> Solution:
    """The Julia backend: `problem` solved by DifferentialEquations.jl with `solver`'s
    OrdinaryDiffEq twin under `options` (a validated `SolveOptions`), gradients by
    SciMLSensitivity's twin of `sensealg`."""
    check(problem, solver, options, sensealg)
    jl = init()
    rhs, theta = model_rhs(jl, problem)
    name, *args = algorithm_call(solver)
    call = JuliaCall(rhs=rhs, algorithm=getattr(jl, name)(*args),
                     sensealg=jl.sensitivity(sensitivity_name(sensealg), "ZygoteVJP"),
                     options=jl.solve_options(*solve_options(options).values()),
                     t0=float(options.t0), t1=float(options.t1), tdir=options.tdir)
    return run(call, problem.u0, theta, solver)


def to_diffeqpy(problem):
    """The problem as a Julia `ODEProblem` built from its generated code, for diffeqpy's `de`
    (callbacks, ensembles, SDEs and the rest of DifferentialEquations.jl). Take `de` from
    `pyude.julia.diffeqpy_de()`, which makes diffeqpy use the Julia already running:

        prob = pyude.julia.to_diffeqpy(problem)
        de = pyude.julia.diffeqpy_de()
        sol = de.solve(prob, de.Tsit5())
    """
    if problem.u0.ndim != 1:
        raise ValueError(f"to_diffeqpy takes one trajectory, a u0 of shape (n,); got "
                         f"{tuple(problem.u0.shape)}. Convert each row, or use an "
                         f"EnsembleProblem in Julia")
    jl = init()
    rhs, theta = model_rhs(jl, problem)
    return jl.make_problem(rhs, _np(problem.u0), float(problem.tspan[0]),
                           float(problem.tspan[1]), _np(theta))


def auto_refusal(problem, solver, options, sensealg) -> str | None:
    """Why `backend="auto"` should not pick Julia for this solve (None when it should): Julia
    is missing, an option or the model cannot cross, or Julia fails to start."""
    from ._runtime import available, start_failure
    if not available():
        return "Julia is not installed"
    try:
        check(problem, solver, options, sensealg)
    except ValueError as err:
        return f"the solve uses options only the native backend has ({err})"
    from .._field import VectorField
    if not isinstance(problem.f, VectorField):
        try:
            from ..symbolic import to_julia, trace
            to_julia(trace(problem.f, problem.n_states, problem.p))
        except Exception as err:  # the model cannot be printed as Julia
            return f"the model cannot cross to Julia ({err})"
    return start_failure()
