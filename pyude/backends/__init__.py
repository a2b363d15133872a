"""Backends behind one protocol (`Backend`), and the one rule for `backend="auto"`."""

from __future__ import annotations

import warnings

from ._base import Backend
from ._compiled import CompiledBackend
from ._julia import JuliaBackend
from ._native import NativeBackend

# Every backend by name; `auto` tries them in this order of preference: compiled where the
# model qualifies (the fastest on a CPU), Julia where it is installed, torch for the rest.
BACKENDS: dict[str, Backend] = {b.name: b for b in (NativeBackend(), CompiledBackend(),
                                                    JuliaBackend())}
AUTO_ORDER = ("numba", "julia", "native")

_ANNOUNCED: set = set()


class BackendNotice(UserWarning):
    """Which backend `backend="auto"` took (said once per process and backend)."""


def names() -> tuple[str, ...]:
    return (*BACKENDS, "auto")


def check_name(backend: str) -> None:
    if backend not in names():
        raise ValueError(f"unknown backend {backend!r}; available backends: "
                         f"{', '.join(map(repr, names()))}")


def choose(backend: str, problem, solver, options, sensealg) -> Backend:
    """The backend named (its `solve` refuses, with the reason, what it cannot take); or,
    for "auto", the first in `AUTO_ORDER` that can take the solve (said once, with why the
    ones before it could not)."""
    check_name(backend)
    if backend != "auto":
        return BACKENDS[backend]
    reasons = []
    for name in AUTO_ORDER:
        reason = BACKENDS[name].unsupported(problem, solver, options, sensealg)
        if reason is None:
            _announce(name, reasons)
            return BACKENDS[name]
        reasons.append(reason)
    raise AssertionError("the native backend takes every solve")


def _announce(name: str, reasons: list[str]) -> None:
    if name in _ANNOUNCED:
        return
    _ANNOUNCED.add(name)
    why = f": {'; '.join(reasons)}" if reasons else ""
    warnings.warn(f"backend='auto' solves on the {name} backend{why}", BackendNotice,
                  stacklevel=5)   # the caller of pyude.solve
