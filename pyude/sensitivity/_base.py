"""Sensitivity algorithms: how `solve` differentiates, named as in SciMLSensitivity."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import ClassVar

from .._loop import solve_on_torch
from .._options import SolveOptions
from .._problem import ODEProblem
from .._solution import Solution
from ._adjoint import needs_grad, refuse_gradient


class AbstractSensitivity(abc.ABC):
    """How gradients of a solve with respect to `u0`, `p` and network weights are computed.
    Every class is abstract or final; options are dataclass fields."""

    @abc.abstractmethod
    def solve(self, problem: ODEProblem, solver, options: SolveOptions) -> Solution:
        """Solve on the torch backend, wiring the backward pass this algorithm stands for
        when anything the solve reads requires a gradient."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


@dataclass(frozen=True)
class DirectAdjoint(AbstractSensitivity):
    """Backpropagation through the solver's steps (discretise-then-optimise): the exact
    gradient of the computed solution, including the step-size controller's choices. Memory
    grows with the number of steps. The default.

    With `checkpointing=True` the solve runs interval by interval between the saved times,
    keeping only each interval's starting state; the backward pass re-solves one interval at
    a time, so memory follows the longest interval instead of the whole solve (at about twice
    the compute). Each interval starts its own step-size sequence.

    Julia: the closest is `ReverseDiffAdjoint()` / `ZygoteAdjoint()`.
    """

    checkpointing: bool = False
    julia_name: ClassVar[str] = "GaussAdjoint"  # no Julia twin: SciML's recommended adjoint

    def solve(self, problem: ODEProblem, solver, options: SolveOptions) -> Solution:
        if self.checkpointing and needs_grad(problem):
            from ._checkpoint import solve_checkpointed
            return refuse_gradient(solve_checkpointed(problem, solver, options))
        return refuse_gradient(solve_on_torch(problem, solver, options))

    def __repr__(self) -> str:
        return "DirectAdjoint(checkpointing=True)" if self.checkpointing else "DirectAdjoint()"
