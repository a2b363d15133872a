"""Automatic stiffness detection and switching between a non-stiff and a stiff method,
DifferentialEquations.jl's `AutoSwitch` (as in `AutoTsit5(Rosenbrock23())`).

After every accepted step the composite estimates the dominant eigenvalue |lambda| of the
Jacobian: from the explicit method's last two stages, both at t + dt
(|k_s - k_s-1| / |g_s - g_s-1|, Hairer and Wanner II, IV.2), or as |J|_inf from the stiff
method's Jacobian. The problem counts as stiff for this step size when
|lambda| dt > tol * S, S being the explicit method's stability-region size (3.5068 for
Tsit5). `maxstiffstep` stiff verdicts in a row switch to the stiff method (and double dt);
`maxnonstiffstep` non-stiff verdicts in a row switch back (and halve dt).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ._base import AbstractImplicitSolver, AbstractSolver, RHSFn, StepResult
from ._dense import StepRecord, axpy
from ._erk import AbstractERK


class _Cache:
    def __init__(self, nonstiff_cache, stiff_cache, stiff_first: bool):
        self.caches = (nonstiff_cache, stiff_cache)
        self.is_stiff = stiff_first
        self.count = 0
        self.switches: list[tuple[float, str]] = []

    def _sum(self, name: str) -> int:
        return sum(getattr(c, name, 0) for c in self.caches if c is not None)

    njacs = property(lambda self: self._sum("njacs"))
    nw = property(lambda self: self._sum("nw"))
    nsolve = property(lambda self: self._sum("nsolve"))


@dataclass(frozen=True, repr=False)
class AutoSwitch(AbstractSolver):
    """A composite that solves with `nonstiff` and switches to `stiff` where the problem is
    stiff, and back. Keyword defaults are OrdinaryDiffEq's."""

    nonstiff: AbstractSolver
    stiff: AbstractSolver
    maxstiffstep: int = 10
    maxnonstiffstep: int = 3
    nonstifftol: float = 0.9
    stifftol: float = 0.9
    dtfac: float = 2.0
    stiffalgfirst: bool = False

    def __post_init__(self):
        if not isinstance(self.nonstiff, AbstractERK) or self.nonstiff.stability_size is None:
            raise ValueError(f"the non-stiff method of an automatic switch must be an explicit "
                             f"method with a known stability region (Tsit5, DP5, Vern7); got "
                             f"{self.nonstiff!r}")
        if not isinstance(self.stiff, AbstractImplicitSolver):
            raise ValueError(f"the stiff method of an automatic switch must be a stiff solver "
                             f"such as Rosenbrock23() or Rodas5P(); got {self.stiff!r}")

    @property
    def order(self) -> int:  # for the first step size: the method that starts
        return (self.stiff if self.stiffalgfirst else self.nonstiff).order

    @property
    def adaptive(self) -> bool:
        return True

    @property
    def implicit(self) -> bool:
        return self.stiff.implicit

    def with_autodiff(self, autodiff: bool) -> "AutoSwitch":
        return dataclasses.replace(self, stiff=self.stiff.with_autodiff(autodiff))

    def init_cache(self, rtol, atol) -> _Cache:
        return _Cache(self.nonstiff.init_cache(rtol, atol), self.stiff.init_cache(rtol, atol),
                      self.stiffalgfirst)

    def _current(self, cache: _Cache) -> tuple[AbstractSolver, Any]:
        if cache.is_stiff:
            return self.stiff, cache.caches[1]
        return self.nonstiff, cache.caches[0]

    def order_now(self, cache: _Cache) -> int:
        return self._current(cache)[0].order

    def step(self, rhs: RHSFn, t: float, u: Tensor, f0: Tensor, dt: float,
             cache: _Cache | None = None) -> StepResult:
        cache = cache if cache is not None else self.init_cache(1e-3, 1e-6)
        method, sub = self._current(cache)
        result = method.step(rhs, t, u, f0, dt, sub)
        result.method = method
        return result

    def eigen_estimate(self, cache: _Cache, u: Tensor, result: StepResult, dt: float) -> float:
        """|lambda|, the size of the dominant eigenvalue of df/du near the last step."""
        with torch.no_grad():
            if cache.is_stiff:
                J = cache.caches[1].J.detach()
                return float(J.abs().sum(dim=-1).amax())
            tab = self.nonstiff.tableau
            s = tab.stages
            ks = [k.detach() for k in result.stages]
            g_last = axpy(u.detach(), dt, tab.a[s - 1, : s - 1], ks[: s - 1])
            g_prev = axpy(u.detach(), dt, tab.a[s - 2, : s - 2], ks[: s - 2])
            num = (ks[-1] - ks[-2]).square().sum(dim=-1).sqrt()
            den = (g_last - g_prev).square().sum(dim=-1).sqrt()
            ratio = torch.where(den > 0, num / den, torch.zeros_like(num))
            return float(ratio.amax())

    def on_accept(self, cache: _Cache, u: Tensor, result: StepResult, dt: float) -> float:
        stiffness = abs(self.eigen_estimate(cache, u, result, dt) * dt) / \
            self.nonstiff.stability_size
        stiff_now = stiffness > (self.stifftol if cache.is_stiff else self.nonstifftol)
        if stiff_now:
            cache.count = 1 if cache.count < 0 else cache.count + 1
        else:
            cache.count = -1 if cache.count > 0 else cache.count - 1
        if not cache.is_stiff and cache.count > self.maxstiffstep:
            cache.is_stiff = True
            cache.switches.append((dt, repr(self.stiff)))
            return self.dtfac
        if cache.is_stiff and cache.count < -self.maxnonstiffstep:
            cache.is_stiff = False
            cache.switches.append((dt, repr(self.nonstiff)))
            return 1 / self.dtfac
        return 1.0

    def interpolate(self, rec: StepRecord, theta: float) -> Tensor:
        return rec.cache["method"].interpolate(rec, theta)

    @property
    def julia_name(self) -> str:
        return f"AutoAlgSwitch({self.nonstiff.julia_name}, {self.stiff.julia_name})"

    def __repr__(self) -> str:
        return f"AutoSwitch({self.nonstiff!r}, {self.stiff!r})"


def AutoTsit5(stiff: AbstractSolver, **kwargs) -> AutoSwitch:
    """Tsit5 that switches to `stiff` where the problem is stiff (`AutoTsit5` in Julia)."""
    from .tsit5 import Tsit5
    return AutoSwitch(Tsit5(), stiff, **kwargs)


def AutoVern7(stiff: AbstractSolver, **kwargs) -> AutoSwitch:
    """Vern7 that switches to `stiff` where the problem is stiff (`AutoVern7` in Julia)."""
    from .vern7 import Vern7
    return AutoSwitch(Vern7(), stiff, **kwargs)


LOW_TOL = 1e-6      # OrdinaryDiffEq's DefaultODEAlgorithm: below it, Vern7 and Rodas5P


def default_solver(rtol=1e-3) -> AutoSwitch:
    """The solver `solve` uses when none is given, chosen by tolerance as OrdinaryDiffEq's
    default algorithm chooses for small systems: Tsit5 switching to Rosenbrock23 where the
    problem is stiff, or below rtol 1e-6 Vern7 switching to Rodas5P. A low-order method at
    tight tolerances takes thousands of steps: on ROBER to 1e11 at rtol 1e-7, Rosenbrock23
    took 4526 steps and 5.6 s (mescd 6.7), Rodas5P 451 steps and 0.9 s (mescd 9.5)."""
    from .rodas5p import Rodas5P
    from .rosenbrock23 import Rosenbrock23
    try:
        level = float(torch.as_tensor(rtol, dtype=torch.float64).max())
    except (TypeError, ValueError, RuntimeError):
        level = 1e-3                 # solve's own checks say what is wrong with rtol
    if level < LOW_TOL:
        return AutoVern7(Rodas5P())
    return AutoTsit5(Rosenbrock23())
