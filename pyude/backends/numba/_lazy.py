"""Kernels compiled on their first call instead of at import.

A kernel with an explicit signature is compiled (or loaded from numba's cache) when its
module is imported. Importing the backend then paid for every kernel, used or not: on a
machine's first solve, 7 s for the parallel batch kernel and 3 s for the discrete adjoint,
before a plain solve could start. `on_first_call` keeps the signature (one specialisation,
cached like the others) and defers the compile to the first call.
"""

from __future__ import annotations

import functools
import threading
from typing import Callable

from numba import njit

from .._compiled import compile_notice


def on_first_call(signature, **options) -> Callable:
    """`njit(signature, cache=True, **options)`, applied when the kernel is first called;
    `kernel.dispatcher()` gives the compiled dispatcher itself."""
    def wrap(py_func):
        lock = threading.Lock()
        compiled: list = []

        def dispatcher():
            if not compiled:
                with lock:              # two threads' first calls compile it once
                    if not compiled:
                        with compile_notice(f"pyude's {py_func.__name__} kernel"):
                            compiled.append(njit(signature, cache=True, **options)(py_func))
            return compiled[0]

        @functools.wraps(py_func)
        def call(*args):
            return (compiled[0] if compiled else dispatcher())(*args)

        call.dispatcher = dispatcher
        call.py_func = py_func
        return call
    return wrap
