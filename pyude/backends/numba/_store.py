"""Growable arrays inside the kernels: the capacity doubles when full, so storing N rows
costs O(N) copies in all."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def room_1d(a, rows):
    """`a`, or a copy with twice the rows when `rows` no longer fit."""
    if rows < a.shape[0]:
        return a
    out = np.empty(2 * a.shape[0] + 1, dtype=a.dtype)
    out[:a.shape[0]] = a
    return out


@njit(cache=True)
def room_2d(a, rows):
    if rows < a.shape[0]:
        return a
    out = np.empty((2 * a.shape[0] + 1, a.shape[1]), dtype=a.dtype)
    out[:a.shape[0]] = a
    return out


@njit(cache=True)
def room_3d(a, rows):
    if rows < a.shape[0]:
        return a
    out = np.empty((2 * a.shape[0] + 1, a.shape[1], a.shape[2]), dtype=a.dtype)
    out[:a.shape[0]] = a
    return out
