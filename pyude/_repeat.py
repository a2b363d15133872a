"""A training loop's solve, prepared once: a `NeuralODE` or `UDE` called again and again with
the same times, options and network remembers its compiled solve with gradient and runs it
directly, skipping the front door's checks, option building and backend choice.

Those are half of a compiled training iteration: 1.2 ms through `solve` against 0.65 ms
prepared, for the Lotka-Volterra UDE of `benchmarks/numba_training.py`. The call is the same
when everything the checks looked at is the same; `call_key` lists it. The prepared solve
reads the current values of the same tensors, so an optimiser's in-place steps are seen,
and it raises `SolverError` on a failed solve as `solve` does.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import Tensor


def call_key(module, u0: Tensor, times: Tensor) -> tuple:
    """What a forward call's checks depend on: the times, the state's layout, grad mode,
    the solver, sensitivity, backend and options, the known parameters, and every tensor
    the model reads with its layout and whether it requires grad (a replaced layer or
    parameter is a new tensor; `net.double()` changes a dtype)."""
    field = module.field
    return (tuple(times.tolist()), tuple(u0.shape), u0.dtype, u0.device, u0.requires_grad,
            torch.is_grad_enabled(), _Same(module.solver), _Same(module.sensealg),
            module.backend, tuple((k, _value(v)) for k, v in sorted(module.options.items())),
            _Same(field.f), _Same(field.net), _structure(field.net),
            tuple((k, _Same(v)) for k, v in sorted(field.fixed.items())),
            tuple((_Same(p), p.dtype, tuple(p.shape), p.requires_grad)
                  for p in module.parameters()))


class _Same:
    """This very object (held, so that its id cannot pass to a new one, which `id()` in a
    key would allow). Equal only to itself."""

    __slots__ = ("obj",)

    def __init__(self, obj):
        self.obj = obj

    def __eq__(self, other):
        return isinstance(other, _Same) and other.obj is self.obj

    def __hash__(self):
        return id(self.obj)


def _value(value):
    """An option's value as it is now (a list or tensor can change in place after the
    solve that was prepared with it copied it)."""
    if isinstance(value, Tensor):
        return ("tensor", value.dtype, tuple(value.shape), tuple(value.reshape(-1).tolist()))
    if isinstance(value, (list, tuple, np.ndarray)):
        try:
            return ("values", tuple(np.asarray(value, dtype=float).reshape(-1).tolist()))
        except (TypeError, ValueError):
            return _Same(value)
    return value


def _structure(net) -> tuple:
    """The network's layers and their settings (an activation swapped in place keeps
    every tensor)."""
    return tuple((type(m), tuple(sorted((k, v) for k, v in vars(m).items()
                                        if not k.startswith("_") and k != "training"
                                        and isinstance(v, (int, float, str, bool)))))
                 for m in net.modules())


def prepared_solve(problem, solver, sensealg, options, backend: str) -> Callable | None:
    """`u0 -> saved states` for this call, or None when it does not run compiled with a
    gradient (torch and Julia solves go through `solve` every time)."""
    from . import backends
    if problem.batch_shape or not torch.is_grad_enabled():
        return None
    chosen = backends.choose(backend, problem, solver, options, sensealg)
    if chosen.name != "numba":
        return None
    from .backends.numba._grad_model import needs_gradient
    from .backends.numba._gradient import prepare, repeatable
    if not needs_gradient(problem) or not repeatable(sensealg):
        return None
    return prepare(problem, solver, options, sensealg, throw=True)
