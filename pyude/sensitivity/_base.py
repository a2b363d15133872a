"""Sensitivity algorithms: how `solve` differentiates, named as in SciMLSensitivity."""

from __future__ import annotations

import abc
from dataclasses import dataclass


class AbstractSensitivity(abc.ABC):
    """How gradients of a solve with respect to `u0`, `p` and network weights are computed.
    Every class is abstract or final; options are dataclass fields."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


@dataclass(frozen=True, repr=False)
class DirectAdjoint(AbstractSensitivity):
    """Backpropagation through the solver's steps (discretise-then-optimise): the exact
    gradient of the computed solution, including the step-size controller's choices. Memory
    grows with the number of steps. The default.

    Julia: the closest is `ReverseDiffAdjoint()` / `ZygoteAdjoint()`.
    """
