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

import numpy as np
import torch
from torch import Tensor

_TOL = 1e-12


def _array(x, ndim: int) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != ndim:
        raise ValueError(f"tableau entry must have {ndim} dimension(s); got shape {arr.shape}")
    return arr


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
class ButcherTableau:
    a: np.ndarray
    b: np.ndarray
    c: np.ndarray
    b_err: np.ndarray | None = None
    dense: DenseTableau | None = None

    def __post_init__(self):
        a, b, c = _array(self.a, 2), _array(self.b, 1), _array(self.c, 1)
        s = b.shape[0]
        if a.shape != (s, s) or c.shape != (s,):
            raise ValueError(f"a must be {s}x{s} and c of length {s} for {s} weights")
        if np.any(np.triu(a) != 0):
            raise ValueError("an explicit tableau's a must be strictly lower triangular")
        if not np.allclose(a.sum(axis=1), c, rtol=0, atol=_TOL):
            raise ValueError(f"row sums of a {a.sum(axis=1)} differ from c {c}")
        if abs(b.sum() - 1) > _TOL:
            raise ValueError(f"weights b sum to {b.sum()!r}, not 1")
        object.__setattr__(self, "a", a)
        object.__setattr__(self, "b", b)
        object.__setattr__(self, "c", c)
        # Per-stage facts as plain Python values: numpy calls in the stepping loop cost
        # microseconds each.
        object.__setattr__(self, "c_float", tuple(float(x) for x in c))
        object.__setattr__(self, "row_used", tuple(bool(a[i, :i].any()) for i in range(s)))
        if self.b_err is not None:
            e = _array(self.b_err, 1)
            if e.shape != (s,) or abs(e.sum()) > _TOL:
                raise ValueError(f"b_err must have {s} entries summing to 0; sums to {e.sum()}")
            object.__setattr__(self, "b_err", e)

    @property
    def stages(self) -> int:
        return self.b.shape[0]

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


def host_arrays(tab, dtype: np.dtype, make) -> tuple:
    """`make(tab)`'s arrays in the numpy `dtype` of the host steps (a float64 row would
    promote a float32 state), made once per tableau and dtype: `as_tensor`'s twin."""
    cache = tab.__dict__.setdefault("_host", {})          # (frozen dataclass: not a field)
    if dtype not in cache:
        cache[dtype] = tuple(np.asarray(x, dtype=dtype) for x in make(tab))
    return cache[dtype]


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
