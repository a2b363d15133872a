"""The backend protocol: `solve()` checks every argument once, then hands
`(problem, solver, options, sensealg)` to one backend, which returns a `Solution`."""

from __future__ import annotations

import abc
from typing import ClassVar


class Backend(abc.ABC):
    """Where a solve runs. A backend that cannot honour part of a solve says which part and
    why: `unsupported` lets `backend="auto"` pass it over, and `solve` refuses it with that
    reason before any work when the backend was named explicitly."""

    name: ClassVar[str]

    @abc.abstractmethod
    def unsupported(self, problem, solver, options, sensealg) -> str | None:
        """Why this backend cannot take the solve, or None when it can."""

    @abc.abstractmethod
    def solve(self, problem, solver, options, sensealg):
        """Run the solve; return a `Solution` (failures as its return code)."""

    def __repr__(self) -> str:
        return f"<{self.name} backend>"
