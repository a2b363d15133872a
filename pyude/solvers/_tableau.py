"""Butcher tableaus as validated float64 data.

An explicit method with s stages is drawn as

    c1 |
    c2 | a21
    .. | ..   ..
    cs | as1  ..  as,s-1
    ---+-----------------
       | b1   ..  bs          (the solution)
       | e1   ..  es          (b_err = b_hat - b: the embedded error estimate)

and maps to `ButcherTableau(a=..., b=..., c=..., b_err=...)` with `a` the full s x s
strictly lower-triangular matrix. Whether the method is FSAL (first same as last) is
computed from the coefficients, never declared.

A method's own dense output is `DenseTableau`: u(t0 + theta dt) = u0 + dt * sum_i
b_i(theta) k_i with b_i(theta) = sum_j poly[i, j] theta^(j+1). Its stages are the method's
s stages, then f(t1, u1) (stage s+1), then any extra stages given by `extra_a`/`extra_c`,
computed only when the interpolant is first used on a step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor

_TOL = 1e-12


def _array(x, ndim: int) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != ndim:
        raise ValueError(f"tableau entry must have {ndim} dimension(s); got shape {arr.shape}")
    return arr


class AbstractTableau:
    """The checks every family's tableau shares: each field an array of its dimension, every
    matrix s x s and every vector of length s (s the number of weights b), row sums of the
    stage matrix equal to c, b summing to 1 and b_err to 0. Per-stage times are kept as
    Python floats: numpy calls in the stepping loop cost microseconds each."""

    _kind: ClassVar[str]

    def _set_arrays(self, matrices: tuple[str, ...], vectors: tuple[str, ...]) -> int:
        arrays = {name: _array(getattr(self, name), 2) for name in matrices}
        arrays.update({name: _array(getattr(self, name), 1) for name in vectors
                       if getattr(self, name) is not None})
        s = arrays["b"].shape[0]
        wrong = [name for name, x in arrays.items() if x.shape != (s,) * x.ndim]
        if wrong:
            raise ValueError(f"a {self._kind} tableau with {s} weights needs {s}x{s} "
                             f"{', '.join(matrices)} and {s} entries in each of "
                             f"{', '.join(vectors)}; {', '.join(wrong)} differ")
        for name, value in arrays.items():
            object.__setattr__(self, name, value)
        object.__setattr__(self, "c_float", tuple(float(x) for x in arrays["c"]))
        return s

    @staticmethod
    def _check_row_sums(a: np.ndarray, c: np.ndarray) -> None:
        if not np.allclose(a.sum(axis=1), c, rtol=0, atol=_TOL):
            raise ValueError(f"row sums of a {a.sum(axis=1)} differ from c {c}")

    @staticmethod
    def _check_weights(b: np.ndarray, b_err: np.ndarray | None) -> None:
        if abs(b.sum() - 1) > _TOL:
            raise ValueError(f"the weights b must sum to 1; they sum to {b.sum()!r}, not 1")
        if b_err is not None and abs(b_err.sum()) > _TOL:
            raise ValueError(f"b_err must have entries summing to 0; sums to {b_err.sum()}")

    @property
    def stages(self) -> int:
        return self.b.shape[0]


@dataclass(frozen=True)
class DenseTableau:
    poly: np.ndarray
    extra_a: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    extra_c: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def __post_init__(self):
        object.__setattr__(self, "poly", _array(self.poly, 2))
        object.__setattr__(self, "extra_a", _array(self.extra_a, 2))
        object.__setattr__(self, "extra_c", _array(self.extra_c, 1))
        if self.extra_a.shape[0] != self.extra_c.shape[0]:
            raise ValueError("extra_a needs one row per entry of extra_c")

    @property
    def degree(self) -> int:
        return self.poly.shape[1]

    def weights(self, theta: float) -> np.ndarray:
        """b_i(theta) for every stage the interpolant uses."""
        powers = theta ** np.arange(1, self.degree + 1)
        return self.poly @ powers


@dataclass(frozen=True)
class ButcherTableau(AbstractTableau):
    a: np.ndarray
    b: np.ndarray
    c: np.ndarray
    b_err: np.ndarray | None = None
    dense: DenseTableau | None = None
    _kind: ClassVar[str] = "Butcher"

    def __post_init__(self):
        s = self._set_arrays(("a",), ("b", "c", "b_err"))
        if np.any(np.triu(self.a) != 0):
            raise ValueError("an explicit tableau's a must be strictly lower triangular")
        self._check_row_sums(self.a, self.c)
        self._check_weights(self.b, self.b_err)
        object.__setattr__(self, "row_used", tuple(bool(self.a[i, :i].any()) for i in range(s)))

    @cached_property
    def fsal(self) -> bool:
        """The last stage is evaluated at the new state, so it is the next step's first."""
        return (self.stages > 1 and self.c[-1] == 1.0 and self.b[-1] == 0.0
                and np.array_equal(self.a[-1], self.b))

    @property
    def b_hat(self) -> np.ndarray | None:
        return None if self.b_err is None else self.b + self.b_err


def as_tensor(tab, name: str, like: Tensor) -> Tensor:
    """The tableau's array `name` as a tensor of `like`'s dtype and device, made once per
    tableau, dtype and device (a tableau is immutable)."""
    cache = tab.__dict__.setdefault("_tensors", {})      # (frozen dataclass: not a field)
    key = (name, like.dtype, like.device)
    if key not in cache:
        cache[key] = torch.as_tensor(getattr(tab, name), dtype=like.dtype, device=like.device)
    return cache[key]


def stage_rows(tab, name: str, like: Tensor) -> list[Tensor]:
    """Row i of the tableau's lower-triangular matrix `name`, its first i entries, as
    tensors (see `as_tensor`)."""
    cache = tab.__dict__.setdefault("_tensors", {})
    key = (name + " rows", like.dtype, like.device)
    if key not in cache:
        matrix = as_tensor(tab, name, like)
        cache[key] = [matrix[i, :i].contiguous() for i in range(matrix.shape[0])]
    return cache[key]


def lower(rows: list[list[float]]) -> np.ndarray:
    """The full strictly lower-triangular matrix from its rows below the diagonal."""
    s = len(rows) + 1
    a = np.zeros((s, s))
    for i, row in enumerate(rows, start=1):
        a[i, : len(row)] = row
    return a
