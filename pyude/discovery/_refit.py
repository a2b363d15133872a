"""Refitting a discovered model's coefficients through the ODE, within a budget: a step
limit per solve, and a bound on the state beyond which a candidate is abandoned."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import sympy
import torch

from .._errors import SolverError
from .._model import Params
from .._problem import ODEProblem
from .._solve import solve
from ._model import DiscoveredModel


class LeftRegion(Exception):
    """A trial solve left the region a plausible model stays in."""


@dataclass(frozen=True)
class Guarded:
    """`f` that raises `LeftRegion` as soon as torch calls it at a state with a component
    beyond `bound` in size: a candidate that blows up is abandoned at once, instead of
    crawling towards its singularity at ever smaller steps.

    Traced (on sympy symbols) it is `f` itself, so the compiled backend takes it; compiled
    solves are cheap enough to run into their step limit, and `check_bounded` then looks
    at what they saved. Equal for equal `f` and `bound`, so one compile serves a search."""

    f: Callable
    bound: float
    # whether torch has called it (then the bound was checked at every step); not part of
    # what makes two guards equal
    called: list = field(default_factory=lambda: [False], compare=False, repr=False)

    def __call__(self, u, p, t):
        if not isinstance(u, torch.Tensor) and any(isinstance(c, sympy.Basic) for c in u):
            return self.f(u, p, t)
        self.called[0] = True
        components = u if isinstance(u, torch.Tensor) else torch.stack(
            [torch.as_tensor(c) for c in u])
        check_bounded(components, self.bound, t)
        return self.f(u, p, t)


def guarded(f: Callable, bound: float) -> Guarded:
    return Guarded(f, float(bound))


def check_bounded(states: torch.Tensor, bound: float, t=None) -> None:
    """Raise `LeftRegion` when a component of `states` is beyond `bound` in size."""
    size = float(states.detach().abs().max()) if states.numel() else 0.0
    if not size <= bound:
        where = "" if t is None else f" at t = {float(t):.4g}"
        raise LeftRegion(f"left the plausible region (a state reached {size:.3g}, beyond "
                         f"{bound:.3g}){where}")


def refit(model: DiscoveredModel, t, data, *, trainable: Sequence[str] | None = None,
          solver=None, rtol: float = 1e-7, atol: float = 1e-7, iters: int = 50,
          fit_u0: bool = False, maxiters: int = 20_000, bound: float | None = None,
          backend: str = "auto") -> float:
    """Refit the named parameters (default: the discovered coefficients) through the ODE by
    LBFGS on the mean squared error to `data` at `t`; updates `model.p` and
    `model.state_mse` (each state's own mean squared error) and returns the final loss
    (inf when every trial solve failed). The initial state is the first observation, or
    with `fit_u0` a parameter too, started there (the first observation is as noisy as the
    rest); `model.u0` keeps it.

    The budget: each solve takes at most `maxiters` steps, and with `bound` a solve whose
    state grows beyond it in size is stopped (on torch at once; on the compiled backend,
    which runs a candidate into its step limit in milliseconds, by its saved states). A
    trial point that breaks either is a failed point for the line search; when the
    starting point does, the refit gives up at once, returns inf and says why in
    `model.failure`.

    `backend` is the solves' (as in `solve`): "auto" compiles the model where it traces,
    and a structure search's candidates share their `TermLibrary`'s one compiled model."""
    from ..solvers import Tsit5

    model.failure = ""
    f, start, solve_name = model.solve_form()
    f = f if bound is None else guarded(f, bound)
    t = torch.as_tensor(t, dtype=torch.float64)
    data = torch.as_tensor(data, dtype=torch.float64)
    names = {solve_name[k] for k in (model.coefficients if trainable is None else trainable)}
    values = {k: torch.tensor(float(v), dtype=torch.float64, requires_grad=k in names)
              for k, v in start.items()}
    u0 = data[0].clone().requires_grad_(fit_u0)
    leaves = [v for k, v in values.items() if k in names] + ([u0] if fit_u0 else [])

    def problem():
        return ODEProblem(f, u0, (float(t[0]), float(t[-1])), Params(values))

    def loss_fn():
        sol = solve(problem(), solver or Tsit5(), backend=backend,
                    saveat=t, rtol=rtol, atol=atol, maxiters=maxiters)
        if bound is not None:
            check_bounded(sol.u, bound)
        return ((sol.u - data) ** 2).reshape(len(t), -1, data.shape[-1]).mean(dim=(0, 1))

    opt = torch.optim.LBFGS(leaves, lr=1.0, max_iter=10, max_eval=15,
                            line_search_fn="strong_wolfe", tolerance_change=0.0)
    calls = 0

    def closure():
        nonlocal calls
        calls += 1
        opt.zero_grad()
        try:
            loss = loss_fn().mean()
        except (SolverError, ValueError, LeftRegion) as err:
            if calls == 1:
                # the starting point itself: nothing to go back to
                if isinstance(err, SolverError) and bound is not None \
                        and not f.called[0]:     # compiled: no bound stopped it
                    err = _left_region(problem(), bound, solver=solver or Tsit5(),
                                       backend=backend, rtol=rtol, atol=atol,
                                       maxiters=maxiters) or err
                raise _GiveUp(_reason(err, maxiters)) from err
            # a trial point where the model blows up (or leaves the finite numbers): a huge
            # loss with no slope sends the line search back
            for leaf in leaves:
                leaf.grad = torch.zeros_like(leaf)
            return torch.tensor(1e30, dtype=torch.float64)
        loss.backward()
        return loss

    try:
        # in rounds of ten iterations, until a round improves the loss by less than a
        # millionth of itself (about the solver's own noise at rtol 1e-5)
        previous = math.inf
        for _ in range(max(1, math.ceil(iters / 10))):
            before = float(opt.step(closure).detach())
            if previous - before < 1e-6 * abs(before):
                break
            previous = before
        with torch.no_grad():
            per_state = loss_fn()
        final = float(per_state.mean())
    except _GiveUp as err:
        model.failure = str(err)
        final = float("inf")
    except (SolverError, ValueError, LeftRegion) as err:
        model.failure = _reason(err, maxiters)
        final = float("inf")
    if not all(bool(torch.isfinite(v).all()) for v in [*values.values(), u0]) \
            or not final < 1e29:
        model.state_mse = []
        return float("inf")
    model.p.update({k: float(values[solve_name[k]].detach()) for k in model.p})
    model.state_mse = per_state.tolist()
    model.u0 = u0.detach()
    return final


def _left_region(problem: ODEProblem, bound: float, **options) -> LeftRegion | None:
    """Whether a failed solve (a compiled one, which no bound stopped) left the region on
    its way: its every accepted step, solved again without saving at the observations."""
    with torch.no_grad():
        sol = solve(problem, throw=False, **options)
    beyond = (sol.u.abs().amax(dim=-1) > bound).nonzero()
    if not len(beyond):
        return None
    i = int(beyond[0])
    return LeftRegion(f"left the plausible region (a state reached "
                      f"{float(sol.u[i].abs().max()):.3g}, beyond {bound:.3g}) at t = "
                      f"{float(sol.t[i]):.4g}")


class _GiveUp(Exception):
    pass


def _reason(err: Exception, maxiters: int) -> str:
    if isinstance(err, LeftRegion):
        return str(err)
    if isinstance(err, SolverError) and "MaxIters" in str(getattr(err, "retcode", "")):
        return f"needed more than {maxiters} steps"
    first_line = str(err).splitlines()[0]
    return f"the solve failed: {first_line.split('failed: ', 1)[-1][:120]}"
