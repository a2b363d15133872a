"""The continuous adjoints: InterpolatingAdjoint, QuadratureAdjoint, GaussAdjoint and
BacksolveAdjoint."""

from __future__ import annotations

import abc
import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from .._errors import SolverError
from .._loop import integrate, solve_on_torch
from .._model import RHS
from .._norms import scaled_rms
from .._options import SolveOptions, build_options
from .._problem import ODEProblem
from .._solution import Solution
from ._adjoint import (ParamSpec, adjoint_solver, failed_forward, fill_none, flatten,
                       needs_grad, param_spec, sum_to, unflatten, vjp)
from ._base import AbstractSensitivity

_GAUSS_NODES, _GAUSS_WEIGHTS = np.polynomial.legendre.leggauss(5)


@dataclass
class _Forward:
    problem: ODEProblem
    solver: Any
    opts: SolveOptions
    spec: ParamSpec
    sol: Solution          # the forward solution, dense, with no graph


class AbstractContinuousAdjoint(AbstractSensitivity):
    """Solve forward without a graph; differentiate by an adjoint ODE solved backwards."""

    def solve(self, problem: ODEProblem, solver: Any, options: SolveOptions) -> Solution:
        if not needs_grad(problem):
            return solve_on_torch(problem, solver, options)
        spec = param_spec(problem)
        forward = _solve_without_graph(problem, solver, options, spec)
        fwd = _Forward(problem, solver, options, spec, forward)
        us = _AdjointFunction.apply(self, fwd, problem.u0, *spec.all)
        return Solution(t=forward.t, u=us, retcode=forward.retcode, message=forward.message,
                        stats=forward.stats, solver=solver,
                        dense=forward.dense if options.dense else None,
                        methods=forward.methods)

    @abc.abstractmethod
    def backward(self, fwd: _Forward, grad_us: Tensor) -> tuple[Tensor, list[Tensor]]:
        """(dL/du0, [dL/dtheta]) from the cotangents of the saved states."""

    # --- shared pieces -------------------------------------------------------------------

    def _segments(self, fwd: _Forward):
        """(t_from, t_to, index of the saved state at t_to or None), from the last saved time
        back to t0."""
        ts = fwd.sol.t.tolist()
        for i in range(len(ts) - 1, 0, -1):
            yield ts[i], ts[i - 1], i - 1
        if ts and ts[0] != fwd.opts.t0:
            yield ts[0], fwd.opts.t0, None

    def _solve_back(self, f, y0: Tensor, t_from: float, t_to: float, fwd: _Forward, solver,
                    dense: bool = False, on_step=None) -> Solution:
        o = fwd.opts
        f.stackable = False   # adjoint systems read the forward solution at their own shapes
        problem = ODEProblem(f, y0, (t_from, t_to))
        opts = build_options(problem, solver, saveat=None if dense else [t_to], dt=o.dt,
                             rtol=o.rtol, atol=o.atol, maxiters=o.maxiters,
                             adaptive=o.adaptive, dense=dense)
        opts.on_step = on_step
        sol = solve_on_torch(problem, solver, opts)
        if not sol.success:
            raise SolverError(f"the adjoint solve with {solver!r} failed: {sol.retcode}: "
                              f"{sol.message}", sol)
        return sol

    def _quadrature(self, fwd: _Forward, mu: list[Tensor], solver):
        """An `on_step` hook adding int a^T df/dtheta dt over each adjoint step to `mu`, by
        five-point Gauss-Legendre on the step's own dense output. The five nodes go through
        f as one batch (states stacked on a new leading axis, each with its own time as a
        tensor): one vector-Jacobian product per step instead of five. A right-hand side
        that cannot take them (a time used as a Python number) is asked node by node."""
        spec, f, p_tensors = _interp_fields(fwd)
        thetas = 0.5 * (_GAUSS_NODES + 1)
        batched = [getattr(f, "stackable", True)]

        def add(rec) -> None:
            times = [rec.t0 + theta * rec.dt for theta in thetas]
            weights = 0.5 * abs(rec.dt) * _GAUSS_WEIGHTS
            adjoints = [w * solver.interpolate(rec, theta) for w, theta in zip(weights, thetas)]
            states = [fwd.sol.dense.near(t) for t in times]
            grads = None
            if batched[0]:
                try:
                    grads = _batched_vjp(f, spec, p_tensors, times, states, adjoints)
                except (TypeError, ValueError, RuntimeError, IndexError):
                    batched[0] = False
            if grads is None:
                grads = [None] * len(mu)
                for t, u_k, a_k in zip(times, states, adjoints):
                    _, gp = vjp(f, spec, p_tensors, t, u_k, a_k, True)
                    grads = [g if acc is None else acc if g is None else acc + g
                             for acc, g in zip(grads, gp)]
            for m, g in zip(mu, grads):
                if g is not None:
                    m += sum_to(g, m)
        return add

    def _adjoint_field(self, fwd: _Forward):
        """a' = -(df/du)^T a along the interpolated forward solution (the vjp of the
        problem's own right-hand side, batched like the states)."""
        spec, f, p_tensors = _interp_fields(fwd)

        def adjoint(aa, _p, t):
            ga, _ = vjp(f, spec, p_tensors, t, fwd.sol.dense.near(t), aa.movedim(0, -1), False)
            return (-ga).movedim(-1, 0)
        return adjoint


def _solve_without_graph(problem: ODEProblem, solver: Any, opts: SolveOptions,
                         spec: ParamSpec) -> Solution:
    """The forward solve, dense, with no autograd graph. It runs before (not inside) the
    autograd.Function, whose forward would switch off the forward-mode AD that stiff
    solvers use for their Jacobians."""
    with torch.no_grad():
        rhs = RHS(problem.f, spec.rebuild([x.detach() for x in spec.p_tensors]), problem.jac)
        u0 = problem.u0.detach()
        f0 = rhs.first_call(opts.t0, u0)
        result = integrate(rhs, solver, u0, f0, dataclasses.replace(opts, dense=True))
    return result.to_solution(problem.u0, solver, opts.tdir)


class _AdjointFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, algo: AbstractContinuousAdjoint, fwd: _Forward, u0: Tensor, *theta):
        ctx.algo, ctx.fwd = algo, fwd
        return fwd.sol.u.clone()

    @staticmethod
    def backward(ctx, grad_us: Tensor):
        if not ctx.fwd.sol.success:
            raise RuntimeError(failed_forward(ctx.fwd.sol.message))
        grad_u0, grad_theta = ctx.algo.backward(ctx.fwd, grad_us.detach())
        theta = ctx.fwd.spec.all
        grad_theta = [sum_to(g, x) for g, x in zip(grad_theta, theta)]
        return (None, None, grad_u0, *grad_theta)


def _batched_vjp(f, spec: ParamSpec, p_tensors: list[Tensor], times: list[float],
                 states: list[Tensor], adjoints: list[Tensor]) -> list[Tensor | None]:
    """sum_k a_k^T df/dtheta (t_k, u_k) in one call of f on the stacked states."""
    u = torch.stack(states)
    shape = (len(times),) + (1,) * (u.ndim - 2)
    t = torch.tensor(times, dtype=u.dtype, device=u.device).reshape(shape).expand(u.shape[:-1])
    _, grads = vjp(f, spec, p_tensors, t, u, torch.stack(adjoints), True)
    return grads


# How far (in units of the solve's tolerances) the re-integrated state may drift from the
# forward one before the gradient is refused: a gradient from a state that far off is wrong.
MAX_BACKSOLVE_DRIFT = 100.0


def _check_drift(u_back: Tensor, u_forward: Tensor, t_from: float, t_to: float,
                 opts: SolveOptions) -> None:
    scale = opts.atol + opts.rtol * u_forward.abs()
    drift = scaled_rms(u_back - u_forward, scale)
    if not drift <= MAX_BACKSOLVE_DRIFT:
        raise SolverError(
            f"BacksolveAdjoint re-integrated u from t={t_from:g} back to t={t_to:g} and "
            f"ended {drift:.3g} tolerances away from the forward solution there (the limit "
            f"is {MAX_BACKSOLVE_DRIFT:g}): the problem is unstable backwards in time, so the "
            f"gradient would be wrong. Use InterpolatingAdjoint() or QuadratureAdjoint().")


def _interp_fields(fwd: _Forward):
    spec, f = fwd.spec, fwd.problem.f
    p_tensors = [x.detach() for x in spec.p_tensors]
    return spec, f, p_tensors


@dataclass(frozen=True, repr=False)
class InterpolatingAdjoint(AbstractContinuousAdjoint):
    """Continuous adjoint using the forward solution's dense output: the augmented system
    (a, dL/dtheta) is solved backwards with u(t) interpolated, never re-integrated. Stable on
    stiff problems when the solver is stiff (its Jacobian is then taken by finite
    differences of the augmented system). Memory: the forward steps (no autograd graph).

    Julia: `InterpolatingAdjoint()` (with `checkpointing=false`).
    """
    julia_name: ClassVar[str] = "InterpolatingAdjoint"

    def backward(self, fwd, grad_us):
        spec, f, p_tensors = _interp_fields(fwd)
        theta = spec.all
        a = torch.zeros_like(grad_us[-1])
        mu = torch.zeros(sum(x.numel() for x in theta), dtype=a.dtype, device=a.device)
        solver = adjoint_solver(fwd.solver)
        a = a + grad_us[-1]
        for t_from, t_to, idx in self._segments(fwd):
            na = a.numel()

            def aug(y, _p, t, shape=a.shape):
                aa = y[:na].reshape(shape)
                ga, gp = vjp(f, spec, p_tensors, t, fwd.sol.dense.near(t), aa, True)
                return torch.cat([-ga.reshape(-1), -flatten(fill_none(gp, theta))])

            y = self._solve_back(aug, torch.cat([a.reshape(-1), mu]), t_from, t_to, fwd,
                                 solver).u[-1]
            a, mu = y[:na].reshape(a.shape), y[na:]
            if idx is not None:
                a = a + grad_us[idx]
        return a, unflatten(mu, theta)


class _AdjointThenQuadrature(AbstractContinuousAdjoint):
    """Solves only a backwards and integrates a^T df/dtheta by Gauss-Legendre on the adjoint's
    steps: after each interval's solve from its stored steps, or (`_on_the_fly`) as each
    step is accepted, storing none."""

    _on_the_fly: ClassVar[bool] = False

    def backward(self, fwd, grad_us):
        mu = [torch.zeros_like(x) for x in fwd.spec.all]
        solver = adjoint_solver(fwd.solver)
        integrand = self._quadrature(fwd, mu, solver)
        field = self._adjoint_field(fwd)
        a = grad_us[-1].clone()
        for t_from, t_to, idx in self._segments(fwd):
            sol_a = self._solve_back(field, a, t_from, t_to, fwd, solver,
                                     dense=not self._on_the_fly,
                                     on_step=integrand if self._on_the_fly else None)
            for rec in sol_a.dense.records if sol_a.dense else []:
                integrand(rec)
            a = sol_a.u[-1]
            if idx is not None:
                a = a + grad_us[idx]
        return a, mu


@dataclass(frozen=True, repr=False)
class QuadratureAdjoint(_AdjointThenQuadrature):
    """Continuous adjoint solving only a (batched, with the problem's own method; a stiff one
    takes the adjoint's Jacobian by finite differences) and storing its dense solution, then
    dL/dtheta = int a^T df/dtheta dt by five-point Gauss-Legendre quadrature on every step
    of that stored solution. Memory: the forward and the adjoint steps of one interval
    between saved times.

    Julia: `QuadratureAdjoint()`.
    """
    julia_name: ClassVar[str] = "QuadratureAdjoint"


@dataclass(frozen=True, repr=False)
class GaussAdjoint(_AdjointThenQuadrature):
    """Continuous adjoint like `QuadratureAdjoint`, but the parameter integral is added up
    step by step while the adjoint is solved (five-point Gauss-Legendre on each accepted
    step's dense output), so the adjoint solution is never stored: memory is the forward
    steps alone, and the parameters never enlarge the adjoint system (which is what makes
    it faster than `InterpolatingAdjoint` for networks with many weights).

    Julia: `GaussAdjoint()`.
    """
    julia_name: ClassVar[str] = "GaussAdjoint"

    _on_the_fly: ClassVar[bool] = True


@dataclass(frozen=True, repr=False)
class BacksolveAdjoint(AbstractContinuousAdjoint):
    """Continuous adjoint that re-integrates u backwards together with (a, dL/dtheta), so it
    keeps nothing of the forward solve but its saved states.

    Warning: integrating u backwards is unstable on stiff, dissipative and chaotic problems
    (contracting modes become expanding ones), and the gradient is then wrong. With
    `checkpointing=True` (the default) u is reset to the forward solution at every saved
    time, which limits the drift but does not cure it. Prefer InterpolatingAdjoint or
    QuadratureAdjoint unless the problem is known to be stable backwards.

    Julia: `BacksolveAdjoint()`.
    """
    julia_name: ClassVar[str] = "BacksolveAdjoint"

    checkpointing: bool = True

    def backward(self, fwd, grad_us):
        spec, f, p_tensors = _interp_fields(fwd)
        theta = spec.all
        rhs = RHS(f, spec.rebuild(p_tensors))
        u = fwd.sol.u[-1].detach()
        a = grad_us[-1].clone()
        mu = torch.zeros(sum(x.numel() for x in theta), dtype=a.dtype, device=a.device)
        solver = adjoint_solver(fwd.solver)
        for t_from, t_to, idx in self._segments(fwd):
            n = u.numel()

            def aug(y, _p, t, shape=u.shape):
                uu, aa = y[:n].reshape(shape), y[n:2 * n].reshape(shape)
                ga, gp = vjp(f, spec, p_tensors, t, uu, aa, True)
                with torch.no_grad():
                    du = rhs(t, uu)
                return torch.cat([du.reshape(-1), -ga.reshape(-1),
                                  -flatten(fill_none(gp, theta))])

            y = self._solve_back(aug, torch.cat([u.reshape(-1), a.reshape(-1), mu]), t_from,
                                 t_to, fwd, solver).u[-1]
            u, a, mu = y[:n].reshape(u.shape), y[n:2 * n].reshape(a.shape), y[2 * n:]
            forward_u = fwd.problem.u0.detach() if idx is None else fwd.sol.u[idx].detach()
            _check_drift(u, forward_u, t_from, t_to, fwd.opts)
            if idx is not None:
                a = a + grad_us[idx]
                if self.checkpointing:
                    u = forward_u
        return a, unflatten(mu, theta)

    def __repr__(self) -> str:
        return "BacksolveAdjoint()" if self.checkpointing else \
            "BacksolveAdjoint(checkpointing=False)"
