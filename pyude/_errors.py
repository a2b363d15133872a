"""Exceptions raised by pyude. Every message says what is wrong, why, and how to fix it."""

from __future__ import annotations

import difflib
from typing import Any, Iterable


class SolverError(RuntimeError):
    """A solve ended without success and `throw=True` (the default).

    The partial solution is in `.solution`; its `retcode` says how the solve ended.
    Pass `throw=False` to `solve` to get the partial solution back instead.
    """

    def __init__(self, message: str, solution: Any = None):
        super().__init__(message)
        self.solution = solution
        self.retcode = None if solution is None else solution.retcode


class UnsupportedOperationError(NotImplementedError):
    """A model uses an operation that the shared op table cannot translate."""


def reject_unknown_kwargs(where: str, unknown: dict[str, Any], known: Iterable[str]) -> None:
    """Raise a TypeError naming each unknown keyword, with the closest known one."""
    if not unknown:
        return
    known = sorted(known)
    parts = []
    for name in unknown:
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean `{close[0]}`?)" if close else ""
        parts.append(f"`{name}`{hint}")
    raise TypeError(
        f"{where} got unknown keyword argument(s) {', '.join(parts)}. "
        f"Valid keywords are: {', '.join(known)}."
    )
