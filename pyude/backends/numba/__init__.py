"""The compiled backend: the traced model printed as Python source and compiled by numba,
solved by kernels compiled once for every model (see docs in `_loop` and `_types`).

`NumbaBackend` is what the front end's backend protocol calls; `solve` is the same entry
as a plain function, with `solve`'s validated options.
"""

from __future__ import annotations

import os as _os

import numba as _numba

from ._stamp import install as _install_stamp

_install_stamp()        # before any kernel module is imported (see `_stamp`)

if not (_os.environ.get("NUMBA_THREADING_LAYER")
        or _os.environ.get("NUMBA_THREADING_LAYER_PRIORITY")):
    # The batch kernel's `prange` runs on numba's first available threading layer; GNU
    # OpenMP ("omp", numba's usual pick without TBB) kills any process forked after it
    # ran, and a process pool or a Dask cluster forks. "workqueue" is fork-safe but not
    # safe for launches from several threads at once, so `_batch` launches one batch at a
    # time. Set NUMBA_THREADING_LAYER to choose otherwise.
    _numba.config.THREADING_LAYER_PRIORITY = ["tbb", "workqueue", "omp"]

from ._backend import NotCompilableError as NotCompilableError
from ._backend import solve as solve
from ._cache import cache_dir as cache_dir
from ._refuse import reason_not_compilable as reason_not_compilable


class NumbaBackend:
    """The numba backend under the front end's backend protocol."""

    name = "numba"

    def solve(self, problem, solver, options, sensealg=None):
        return solve(problem, solver, options, sensealg)

    def reason_not_compilable(self, problem, solver, options=None, sensealg=None):
        return reason_not_compilable(problem, solver, options, sensealg)
