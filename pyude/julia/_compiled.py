"""Julia objects built once per process: compiled right-hand sides and Lux chains, by
generated source and layer spec. A new Julia function type on every solve would make
OrdinaryDiffEq, Zygote and the adjoint recompile, and memory would grow."""

from __future__ import annotations

from typing import Any, Callable

_COMPILED: dict = {}


def compiled(key: tuple, build: Callable[[], Any]) -> Any:
    """The Julia object cached under `key`, built once by `build()`."""
    if key not in _COMPILED:
        _COMPILED[key] = build()
    return _COMPILED[key]
