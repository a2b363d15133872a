"""A problem's model compiled for the kernels: traced, printed (`_codegen`), loaded through
the cache (`_cache`), and its parameters packed as the flat float64 rows `p[k]` that the
generated code reads."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from types import ModuleType

import numpy as np
import torch
from numba import types
from numba.core.types.function_type import WrapperAddressProtocol
from numba.core.typing.typeof import typeof_impl
from numba.experimental.function_type import _get_wrapper_address

from ..._model import Params
from ..._problem import ODEProblem
from ...symbolic import trace
from ._cache import load
from ._codegen import generate
from ._types import DFDT_SIG, JAC_SIG, RHS_SIG

_COMPILED: dict[tuple, "CompiledModel"] = {}


class FunctionAddress(WrapperAddressProtocol):
    """A compiled function as the kernels take it: its address and its numba type, made
    once. Handing numba the dispatcher itself makes every call of a kernel type it and look
    the address up again (about 0.1 ms for each function); a plain address protocol object
    gets a new `FunctionType` built on every call."""

    def __init__(self, dispatcher, signature):
        self._dispatcher = dispatcher             # keeps the code at the address alive
        self._signature = signature
        self._address = _get_wrapper_address(dispatcher, signature)
        self.numba_type = types.FunctionType(signature)

    def __wrapper_address__(self) -> int:
        return self._address

    def signature(self):
        return self._signature


@typeof_impl.register(FunctionAddress)
def _typeof_function_address(value, context):
    return value.numba_type


@dataclass
class CompiledModel:
    module: ModuleType
    jac_error: str | None          # why the Jacobian could not be printed, if it could not
    reads_t: bool
    source: str

    @cached_property
    def functions(self) -> tuple:
        """rhs, jac and dfdt as the kernels take them."""
        m = self.module
        return (FunctionAddress(m.rhs, RHS_SIG), FunctionAddress(m.jac, JAC_SIG),
                FunctionAddress(m.dfdt, DFDT_SIG))


def _layout(p) -> tuple:
    """What of `p` the generated code depends on: its names, or its number of entries."""
    if p is None:
        return ("none",)
    if isinstance(p, Params):
        return ("names", *p.names())
    return ("positional", 1 if p.ndim == 0 else int(p.shape[-1]))


def compile_model(problem: ODEProblem) -> CompiledModel:
    """The compiled model of `problem.f` (traced once per function and parameter layout in
    a process; compiled once per generated source on a machine)."""
    key = (problem.f, problem.n_states, _layout(problem.p))
    compiled = _COMPILED.get(key)
    if compiled is None:
        generated = generate(trace(problem.f, problem.n_states, problem.p))
        compiled = CompiledModel(load(generated.source), generated.jac_error,
                                 generated.reads_t, generated.source)
        _COMPILED[key] = compiled
    return compiled


def _values(p) -> list[torch.Tensor]:
    if p is None:
        return []
    if isinstance(p, Params):
        return [torch.as_tensor(v) for v in p]
    if p.ndim == 0:
        return [p]
    return list(p.unbind(-1))


def pack_params(problem: ODEProblem) -> np.ndarray:
    """The parameters as a (B, k) float64 array, one row per trajectory of u0's batch
    (B = 1 without a batch); batched parameters broadcast against u0's batch shape."""
    batch = problem.batch_shape
    values = _values(problem.p)
    rows = int(np.prod(batch)) if batch else 1
    if not values:
        return np.zeros((rows, 0))
    columns = []
    for v in values:
        v = v.detach().to(torch.float64)
        try:
            columns.append(v.expand(batch) if batch else v.reshape(()))
        except RuntimeError:
            raise ValueError(
                f"a parameter of batch shape {tuple(v.shape)} does not broadcast to u0's "
                f"batch shape {batch}; the numba backend solves one trajectory per entry of "
                f"u0's batch, so give u0 the full batch shape") from None
    return np.ascontiguousarray(torch.stack(columns, dim=-1).reshape(rows, -1).numpy())
