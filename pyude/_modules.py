"""`NeuralODE` and `UDE`: torch modules whose forward pass is a solve."""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import torch
from torch import Tensor, nn

from . import backends
from ._errors import reject_unknown_kwargs
from ._field import VectorField
from ._options import DEFAULT_RTOL, build_options
from ._problem import ODEProblem
from ._repeat import call_key, prepared_solve
from ._solve import resolved, solve


class _SolvingModule(nn.Module):
    _OPTIONS = ("rtol", "atol", "dt", "maxiters", "dtmin", "dtmax", "tstops", "adaptive",
                "controller")

    def __init__(self, solver, sensealg, backend, options):
        super().__init__()
        reject_unknown_kwargs(type(self).__name__, {k: v for k, v in options.items()
                                                     if k not in self._OPTIONS},
                              ("solver", "sensealg", "backend", *self._OPTIONS))
        backends.check_name(backend)
        self.solver, self.sensealg, self.options = solver, sensealg, options
        self.backend = backend
        self._repeat: tuple | None = None      # (call_key, prepared compiled solve)

    def forward(self, u0: Tensor, t: Tensor | Sequence[float]) -> Tensor:
        """The trajectory at the times `t` (first entry the initial time), shape
        `(len(t), *batch, n)`."""
        times = torch.as_tensor(t, dtype=torch.float64).reshape(-1)
        if times.numel() < 2:
            raise ValueError("t must hold at least two times: the initial time and one more")
        prob = ODEProblem(self.field, u0, (float(times[0]), float(times[-1])))
        # only a solve with a gradient has a prepared form (`_repeat`)
        key = call_key(self, prob.u0, times) if torch.is_grad_enabled() else None
        seen = key is not None and self._repeat is not None and self._repeat[0] == key
        if seen and self._repeat[1] is not None:
            return self._repeat[1](prob.u0)
        self._check_network(prob.u0)
        sol = solve(prob, self.solver, saveat=times, sensealg=self.sensealg,
                    backend=self.backend, **self.options)
        if key is not None and not seen:
            self._repeat = (key, self._prepare(prob, times))
        return sol.u

    def __getstate__(self):
        # the prepared solve holds compiled code: a pickled (or sent) module prepares anew
        return {**super().__getstate__(), "_repeat": None}

    def _prepare(self, prob: ODEProblem, times: Tensor) -> Callable | None:
        """The compiled solve of this very call, for the next ones (`_repeat`), or None
        when it does not run compiled with a gradient."""
        solver, sensealg = resolved(self.solver, self.sensealg,
                                    self.options.get("rtol", DEFAULT_RTOL))
        options = build_options(prob, solver, saveat=times, **self.options)
        # without this call's u0 and its graph (kept for the module's lifetime otherwise)
        u0 = prob.u0.detach().requires_grad_(prob.u0.requires_grad)
        return prepared_solve(ODEProblem(self.field, u0, prob.tspan), solver, sensealg,
                              options, self.backend)


    def _check_network(self, u0: Tensor) -> None:
        """The network's dtype (and, for a NeuralODE, its widths) against the state, before
        any solve: torch would only say that two matrices cannot be multiplied."""
        dtypes = {p.dtype for p in self.net.parameters() if p.is_floating_point()}
        if dtypes and dtypes != {u0.dtype}:
            raise ValueError(
                f"the network's weights are {', '.join(map(str, sorted(dtypes, key=str)))} but "
                f"the state is {u0.dtype}; give them one dtype: `net.double()` for a float64 "
                f"state, or `u0.float()` for float32")
        linears = [m for m in self.net.modules() if isinstance(m, nn.Linear)]
        n = u0.shape[-1]
        if isinstance(self, NeuralODE) and linears and (
                linears[0].in_features != n or linears[-1].out_features != n):
            raise ValueError(
                f"a NeuralODE's network maps the state to its derivative, so it must take "
                f"and return {n} values (the state's width); its first Linear takes "
                f"{linears[0].in_features} and its last returns {linears[-1].out_features}")


class NeuralODE(_SolvingModule):
    """du/dt = net(u): a network as the whole vector field.

    Arguments:
        net: a torch module mapping `(*batch, n)` to `(*batch, n)`.
        solver: a pyude solver (default Tsit5 switching to Rosenbrock23 when stiff).
        sensealg: `DirectAdjoint()` (default) or a continuous adjoint.
        backend: `"auto"` (the default: compiled where the model and its network qualify,
            else torch, as for `solve`), `"numba"`, `"native"` or `"julia"` (the last two
            compile or cross only the network subset: `nn.Sequential` of `nn.Linear` and
            element-wise activations).
        **options: `rtol`, `atol` and the other `solve` options.
    """

    def __init__(self, net: nn.Module, solver: Any = None, *, sensealg: Any = None,
                 backend: str = "auto", **options):
        super().__init__(solver, sensealg, backend, options)
        self.net = net
        self.field = VectorField(None, net, None, {})


class UDE(_SolvingModule):
    """A universal differential equation: known physics plus network terms, written once as
    `f(u, p, t, nn)` with `nn(u)` the network's outputs as components.

    Arguments:
        f: the model, e.g. `lambda u, p, t, nn: [p.alpha * u[0] + nn(u)[0], ...]`.
        net: the network.
        p: named physical parameters (a dict).
        trainable: names of parameters to learn (default none); the rest stay fixed.
        solver, sensealg, backend, **options: as for `NeuralODE`.

    `parameters()` holds the network's weights and the trainable physical parameters, read
    back with `ude.physical_parameters()`.
    """

    def __init__(self, f: Callable, net: nn.Module, p: Mapping[str, float] | None = None, *,
                 trainable: Sequence[str] = (), solver: Any = None, sensealg: Any = None,
                 backend: str = "auto", **options):
        super().__init__(solver, sensealg, backend, options)
        p = dict(p or {})
        unknown = [name for name in trainable if name not in p]
        if unknown:
            raise ValueError(f"trainable names {unknown} are not in p ({sorted(p)})")
        learn = nn.ParameterDict({k: nn.Parameter(torch.as_tensor(float(p[k]),
                                                                  dtype=torch.float64))
                                  for k in trainable})
        fixed = {k: torch.as_tensor(float(v), dtype=torch.float64) for k, v in p.items()
                 if k not in trainable}
        self.net = net
        self.field = VectorField(f, net, learn, fixed)

    def physical_parameters(self) -> dict[str, float]:
        values = {**self.field.fixed, **dict(self.field.params.items())}
        return {k: float(v.detach()) for k, v in values.items()}
