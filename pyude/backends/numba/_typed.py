"""Function addresses that carry their numba type, made once: numba types a
`WrapperAddressProtocol` argument by building its `FunctionType` from the signature on every
call of a kernel (about 6-12 us per function argument; the loop kernel takes six)."""

from __future__ import annotations

from numba import types
from numba.core.types.function_type import WrapperAddressProtocol
from numba.core.typing.typeof import typeof_impl


class TypedAddress(WrapperAddressProtocol):
    """A compiled function's address with its numba type computed once. numba types a
    `WrapperAddressProtocol` argument by building its `FunctionType` from the signature on
    every call of a kernel (about 6-12 us per function argument, measured on a loaded
    machine; the loop kernel takes six); the type registered below is read back instead."""

    def __init__(self, address):
        self._inner = address                     # keeps the compiled code alive
        self._address = address.__wrapper_address__()
        self._signature = address.signature()
        self.numba_type = types.FunctionType(self._signature)

    def __wrapper_address__(self) -> int:
        return self._address

    def signature(self):
        return self._signature


@typeof_impl.register(TypedAddress)
def _typeof_typed_address(val, c):
    return val.numba_type


_TYPED: dict[int, tuple] = {}


def typed(value):
    """`value` as a `TypedAddress` when it is a function address (one per address object,
    kept), else unchanged."""
    if isinstance(value, WrapperAddressProtocol) and not isinstance(value, TypedAddress):
        hit = _TYPED.get(id(value))
        if hit is None or hit[0] is not value:
            hit = _TYPED[id(value)] = (value, TypedAddress(value))
        return hit[1]
    return value
