"""How a model `f(u, p, t)` is called: components in, components out, any batch shape.

Inside `f`, the state arrives with its components first, so `x, y = u` gives tensors of
shape `(*batch,)`; parameters arrive the same way (`p[0]`, or `p.alpha` for a dict). `f`
may return a sequence of components or a tensor with components first; `RHS` stacks the
result back to the solver's layout `(*batch, n)`.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor


class Params:
    """Named parameters, read as `p.alpha` or `p["alpha"]` (or by position, `p[0]`)."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, Any]):
        object.__setattr__(self, "_values", dict(values))

    def __getattr__(self, name: str):
        values = object.__getattribute__(self, "_values")
        try:
            return values[name]
        except KeyError:
            raise AttributeError(
                f"the model reads parameter `{name}`, but the problem's parameters are "
                f"{sorted(values)}; add `{name}` to the `p` dict of the problem"
            ) from None

    def __setattr__(self, name, value):
        raise AttributeError("Params are read-only inside a model; use ODEProblem.remake(p=...)")

    def __reduce__(self):
        # rebuilt from its values: the default pickling of slots would assign attributes
        return Params, (dict(self._values),)

    def __getitem__(self, key: str | int):
        if isinstance(key, int):
            return list(self._values.values())[key]
        return self.__getattr__(key)

    def __iter__(self) -> Iterator:
        return iter(self._values.values())

    def __len__(self) -> int:
        return len(self._values)

    def names(self) -> list[str]:
        return list(self._values)

    def items(self):
        return self._values.items()

    def map(self, fn: Callable[[Any], Any]) -> "Params":
        return Params({k: fn(v) for k, v in self._values.items()})

    def __repr__(self) -> str:
        return f"Params({self._values!r})"


def _as_float_tensor(x: Any, name: str, dtype, device) -> Tensor:
    if isinstance(x, Tensor):
        if x.is_complex():
            raise TypeError(f"{name} is complex; pyude solves real-valued ODEs only")
        return x.to(dtype=dtype, device=device)
    arr = np.asarray(x)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{name} must be numbers (a float, a sequence or a tensor); got {x!r}")
    if np.iscomplexobj(arr):
        raise TypeError(f"{name} is complex; pyude solves real-valued ODEs only")
    return torch.as_tensor(arr, dtype=dtype, device=device)


def _check_finite(x: Tensor, name: str) -> None:
    bad = ~torch.isfinite(x.detach())
    if bad.any():
        where = tuple(int(i) for i in bad.nonzero()[0])
        raise ValueError(
            f"{name} contains NaN or Inf (first at index {where}); a solve cannot start from "
            f"non-finite values. Check how {name} was computed."
        )


def as_params(p: Any, dtype, device) -> Tensor | Params | None:
    """Normalise `p` to a tensor (components on the last axis) or a `Params` of tensors."""
    if p is None:
        return None
    if isinstance(p, Params):
        p = dict(p.items())
    if isinstance(p, Mapping):
        out = {}
        for key, value in p.items():
            if not isinstance(key, str) or not key.isidentifier():
                raise TypeError(
                    f"parameter names must be identifiers (read as p.name in the model); "
                    f"got {key!r}"
                )
            out[key] = _as_float_tensor(value, f"p[{key!r}]", dtype, device)
            _check_finite(out[key], f"p[{key!r}]")
        return Params(out)
    if isinstance(p, Tensor):
        tensor = _as_float_tensor(p, "p", dtype, device)
    elif isinstance(p, Sequence) and any(isinstance(v, Tensor) for v in p):
        parts = [_as_float_tensor(v, f"p[{i}]", dtype, device) for i, v in enumerate(p)]
        tensor = torch.stack(torch.broadcast_tensors(*parts), dim=-1)
    else:
        tensor = _as_float_tensor(p, "p", dtype, device)
    _check_finite(tensor, "p")
    return tensor


def param_view(p: Tensor | Params | None):
    """What the model sees: components first, so `a, b = p` and `p[0]` read parameters."""
    if isinstance(p, Tensor) and p.ndim > 0:
        return p.movedim(-1, 0)
    return p


def stack_components(out: Any, like: Tensor) -> Tensor:
    """Turn `f`'s return value (components first) into a tensor shaped like `like`."""
    if isinstance(out, Tensor):
        if out.ndim == 0:
            return out.expand_as(like)
        return out.movedim(0, -1).expand_as(like)
    parts = [c if isinstance(c, Tensor) else torch.as_tensor(c, dtype=like.dtype,
                                                             device=like.device)
             for c in out]
    shape = parts[0].shape
    if any(part.shape != shape for part in parts):   # (broadcasting costs a Python call)
        parts = torch.broadcast_tensors(*parts)
    stacked = torch.stack(parts, dim=-1)
    return stacked if stacked.shape == like.shape else stacked.expand_as(like)


def describe_output(out: Any) -> str:
    if isinstance(out, Tensor):
        return f"a tensor of shape {tuple(out.shape)}"
    if isinstance(out, (list, tuple)):
        return f"a {type(out).__name__} of {len(out)} components"
    return f"{type(out).__name__}"


def check_output(out: Any, like: Tensor) -> None:
    """Raise a clear error when `f` does not return one derivative per state component."""
    n = like.shape[-1]
    batch = tuple(like.shape[:-1])
    expect = (f"{n} components (a sequence of {n} values, or a tensor of shape "
              f"({n}, *batch) with components first)")
    if isinstance(out, (list, tuple)):
        for i, c in enumerate(out):
            if not isinstance(c, (Tensor, int, float, np.number)) or isinstance(c, bool):
                raise TypeError(
                    f"f returned component {i} as {type(c).__name__} {c!r}; every component "
                    f"must be a number or a tensor (the derivative of state component {i})")
    if isinstance(out, Tensor):
        ok = out.ndim >= 1 and out.shape[0] == n
        if ok:
            try:
                torch.broadcast_shapes(tuple(out.shape[1:]), batch)
            except RuntimeError:
                ok = False
    elif isinstance(out, (list, tuple)):
        ok = len(out) == n and all(
            not isinstance(c, Tensor) or _broadcasts(c.shape, batch) for c in out)
    else:
        ok = False
    if not ok:
        raise ValueError(
            f"f returned {describe_output(out)}, but u0 has shape {tuple(like.shape)}, so f "
            f"must return {expect}. Return one derivative per state component, e.g. "
            f"`return [dx, dy]`."
        )


def _broadcasts(shape, batch) -> bool:
    try:
        return tuple(torch.broadcast_shapes(tuple(shape), batch)) == batch
    except RuntimeError:
        return False


class RHS:
    """`f` bound to its parameters, in the solver's layout, counting evaluations."""

    def __init__(self, f: Callable, p: Tensor | Params | None, jac: Callable | None = None):
        self.f = f
        self.jac_fn = jac
        self.p_view = param_view(p)
        self.nf = 0
        # f accepts extra leading batch axes (models do; internal adjoint systems over one
        # flat vector do not, and mark themselves with `stackable = False`)
        self.stackable = getattr(f, "stackable", True)

    def jacobian(self, t: float, u: Tensor) -> Tensor:
        """The user's Jacobian in the solver layout (*batch, n, n)."""
        out = self.jac_fn(u.movedim(-1, 0), self.p_view, t)
        n = u.shape[-1]
        ok = (out.ndim >= 2 and tuple(out.shape[:2]) == (n, n)) if isinstance(out, Tensor) \
            else (len(out) == n and all(len(row) == n for row in out))
        if not ok:
            shape = tuple(out.shape) if isinstance(out, Tensor) else \
                (len(out), *{len(row) for row in out})
            raise ValueError(f"jac returned shape {shape}; it must give {n} rows of {n} "
                             f"components (or a tensor of shape ({n}, {n}, *batch))")
        if isinstance(out, Tensor):
            rows = out.movedim(0, -1).movedim(0, -1)
        else:
            rows = torch.stack([stack_components(row, u) for row in out], dim=-2)
        return rows.expand(*u.shape[:-1], n, n)

    def __call__(self, t: float, u: Tensor) -> Tensor:
        self.nf += 1
        return stack_components(self.f(u.movedim(-1, 0), self.p_view, t), u)

    def first_call(self, t: float, u: Tensor) -> Tensor:
        """The first evaluation: checks the output's shape and dtype before any step is
        taken."""
        self.nf += 1
        out = self.f(u.movedim(-1, 0), self.p_view, t)
        check_output(out, u)
        stacked = stack_components(out, u)
        if stacked.dtype != u.dtype:
            raise ValueError(
                f"f returned {stacked.dtype} values for a state of dtype {u.dtype}: the steps "
                f"would mix precisions (and the stiff solvers' linear algebra refuses to). Give "
                f"u0, p and any network one dtype, e.g. `net.double()` or "
                f"`u0.to({stacked.dtype})`.")
        return stacked
