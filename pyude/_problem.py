"""`ODEProblem`: one model definition, its initial state, time span and parameters."""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
from torch import Tensor

from ._model import Params, _as_float_tensor, _check_finite, as_params


def _as_state(u0: Any) -> Tensor:
    if isinstance(u0, Tensor):
        dtype = u0.dtype if u0.is_floating_point() else torch.float64
        device = u0.device
    else:
        dtype, device = torch.float64, torch.device("cpu")
    u = _as_float_tensor(u0, "u0", dtype, device)
    if u.ndim == 0:
        u = u.reshape(1)
    if u.shape[-1] == 0:
        raise ValueError("u0 has no components; an ODE needs at least one state variable")
    if u.numel() == 0:
        raise ValueError(f"u0 has shape {tuple(u.shape)}: an empty batch, with no trajectory "
                         f"to solve. Give at least one initial state, shape (*batch, n) with "
                         f"every batch size >= 1.")
    _check_finite(u, "u0")
    return u


def _as_tspan(tspan: Any) -> tuple[float, float]:
    if isinstance(tspan, Tensor) and tspan.requires_grad or isinstance(tspan, (list, tuple)) \
            and any(isinstance(t, Tensor) and t.requires_grad for t in tspan):
        raise ValueError(
            "tspan requires grad, but pyude does not differentiate with respect to the time "
            "span (its gradient would silently be None). Pass plain numbers (`t.item()`), or "
            "make the span a parameter of f: solve on (0, 1) with f scaled by a duration "
            "that requires grad.")
    try:
        t0, t1 = (float(t) for t in tspan)
    except (TypeError, ValueError):
        raise TypeError(
            f"tspan must be a pair of real numbers (t0, t1); got {tspan!r}"
        ) from None
    if not (math.isfinite(t0) and math.isfinite(t1)):
        raise ValueError(f"tspan must be finite; got ({t0}, {t1})")
    return t0, t1


class ODEProblem:
    """An ODE `du/dt = f(u, p, t)` on `tspan` from `u0`, with SciML's argument order.

    Arguments:
        f: the model, `f(u, p, t)`. `u` arrives with components first (`x, y = u` gives
            tensors of shape `(*batch,)`); return one derivative per component, as a
            sequence or as a tensor with components first. Use `pyude.ops` for math
            functions so that the same `f` can be traced and printed as Julia.
        u0: the initial state, shape `(*batch, n)`. Lists and arrays become float64;
            a tensor keeps its dtype and device, and the solve follows them.
        tspan: `(t0, t1)`; `t1 < t0` integrates backwards in time.
        p: parameters: a sequence or tensor (components on the last axis, batch before
            it, read as `p[0]` or `a, b = p`), or a dict (read as `p.alpha`).
        jac: optional Jacobian `jac(u, p, t)` for the stiff solvers, as rows of components
            (`[[df1/dx, df1/dy], [df2/dx, df2/dy]]`) or a tensor of shape (n, n, *batch).
            Without it the stiff solvers differentiate `f` (or take finite differences).

    Returns:
        a problem to pass to `pyude.solve`.
    """

    __slots__ = ("f", "u0", "tspan", "p", "jac")

    def __init__(self, f: Callable, u0: Any, tspan: Any, p: Any = None,
                 jac: Callable | None = None):
        if not callable(f):
            raise TypeError(
                f"f must be a callable f(u, p, t) returning du/dt; got "
                f"{type(f).__name__} {f!r}"
            )
        if jac is not None and not callable(jac):
            raise TypeError(f"jac must be a callable jac(u, p, t) or None; got {jac!r}")
        self.f = f
        self.jac = jac
        self.u0 = _as_state(u0)
        self.tspan = _as_tspan(tspan)
        self.p: Tensor | Params | None = as_params(p, self.u0.dtype, self.u0.device)

    @property
    def batch_shape(self) -> tuple[int, ...]:
        return tuple(self.u0.shape[:-1])

    @property
    def n_states(self) -> int:
        return int(self.u0.shape[-1])

    def remake(self, *, u0: Any = None, tspan: Any = None, p: Any = None) -> "ODEProblem":
        """A copy with some of `u0`, `tspan` and `p` replaced (SciML's `remake`)."""
        return ODEProblem(
            self.f,
            self.u0 if u0 is None else u0,
            self.tspan if tspan is None else tspan,
            self.p if p is None else p,
            jac=self.jac,
        )

    def __repr__(self) -> str:
        name = getattr(self.f, "__name__", type(self.f).__name__)
        return (f"ODEProblem(f={name}, u0 shape={tuple(self.u0.shape)}, "
                f"dtype={self.u0.dtype}, tspan={self.tspan})")
