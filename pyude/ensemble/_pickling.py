"""Sending an ensemble's work to other processes: pickled once (with cloudpickle where
installed), unpickled once per worker process, and a clear error, before any work, naming
what cannot be pickled."""

from __future__ import annotations

import pickle
from collections import OrderedDict
from hashlib import sha1
from typing import Any, Iterable

from torch import Tensor

from .._model import Params

from ._chunk import Work, run_chunk


def dumps(obj: Any) -> bytes:
    """Pickle with cloudpickle where installed (it sends lambdas, closures and functions
    defined in `__main__` by value), else with the standard pickle."""
    try:
        import cloudpickle
    except ImportError:
        return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


_LOADED: OrderedDict = OrderedDict()


def remote_chunk(payload: bytes, start: int, stop: int, token: str) -> bytes:
    """What a worker runs: the work (unpickled once per process and ensemble), one chunk,
    the result pickled back. `token` keeps resubmissions distinct to schedulers that
    reuse the results of identical calls."""
    key = sha1(payload).digest()
    work = _LOADED.get(key)
    if work is None:
        work = pickle.loads(payload)
        _LOADED[key] = work
        while len(_LOADED) > 4:
            _LOADED.popitem(last=False)
    result = run_chunk(work, start, stop)
    try:
        return dumps(result)
    except Exception as err:
        raise TypeError(
            f"the outputs of trajectories {start} to {stop - 1} cannot be pickled to be sent "
            f"back from the worker ({type(err).__name__}: {err}); make output_func return "
            f"tensors, arrays, numbers or other picklable values") from err


def pickle_work(work: Work) -> bytes:
    """The pickled work, or a TypeError, before any work is sent, that names the piece
    that cannot be pickled and how to fix it."""
    p = work.problem.p
    values = list(p.items()) if isinstance(p, Params) else [("p", p)]
    for name, value in [("u0", work.problem.u0), *values]:
        if isinstance(value, Tensor) and value.requires_grad:
            raise ValueError(
                f"the problem's {name} requires grad, but gradients do not come back from "
                f"other processes; solve an ensemble you differentiate with "
                f"EnsembleSerial() or EnsembleThreads() (the loss then backpropagates "
                f"through the stacked solves), or pass `{name}.detach()`")
    try:
        return dumps(work)
    except Exception as err:
        found = [("problem.f", work.problem.f), ("problem.jac", work.problem.jac),
                 ("problem.p", work.problem.p), ("problem.u0", work.problem.u0),
                 ("prob_func", work.prob_func), ("output_func", work.output_func),
                 ("solver", work.solver)]
        found += [(f"the solve option `{k}`", v) for k, v in work.options.items()]
        path, leaf, leaf_err = _culprit(found, err)
        lambdas = ("" if _has_cloudpickle() else
                   " Without cloudpickle installed, lambdas, closures and functions defined "
                   "inside other functions cannot be pickled: define them at module level, "
                   "or `pip install cloudpickle`.")
        raise TypeError(
            f"the ensemble cannot be sent to the workers: {path} ({_short(leaf)}) cannot be "
            f"pickled: {type(leaf_err).__name__}: {leaf_err}. A distributed strategy pickles "
            f"the problem (f, jac, u0, p), prob_func, output_func, the solver and the solve "
            f"options once, before any work starts. To fix it, keep objects like this one "
            f"(locks, open files, connections, generators) out of them: create them inside "
            f"the function, on the worker, and use a module-level function instead of a "
            f"lambda or a closure over them.{lambdas} EnsembleSerial() and EnsembleThreads() "
            f"pickle nothing and run this ensemble as it is.") from err


def _has_cloudpickle() -> bool:
    try:
        import cloudpickle  # noqa: F401
    except ImportError:
        return False
    return True


def _short(obj: Any) -> str:
    text = repr(obj)
    return text if len(text) <= 80 else text[:77] + "..."


def _culprit(named: Iterable[tuple[str, Any]], err: Exception, depth: int = 0):
    """The deepest named piece that fails to pickle, its value and its error."""
    for name, obj in named:
        try:
            dumps(obj)
        except Exception as inner:
            if depth >= 6:
                return name, obj, inner
            deeper = _culprit(_parts(name, obj), inner, depth + 1)
            return deeper if deeper[0] is not None else (name, obj, inner)
    return None, None, err


def _parts(name: str, obj: Any) -> list[tuple[str, Any]]:
    """The pieces `obj` is pickled from, with their names."""
    if isinstance(obj, (str, bytes, int, float, Tensor)):
        return []
    if isinstance(obj, dict):
        return [(f"{name}[{k!r}]", v) for k, v in obj.items()]
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [(f"{name}[{i}]", v) for i, v in enumerate(obj)]
    if isinstance(obj, Params):
        return [(f"{name}.{k}", v) for k, v in obj.items()]
    parts = []
    code = getattr(obj, "__code__", None)
    if code is not None:                                  # a function
        for var, cell in zip(code.co_freevars, getattr(obj, "__closure__", None) or ()):
            try:
                parts.append((f"{name} (closure variable `{var}`)", cell.cell_contents))
            except ValueError:
                pass
        glob = getattr(obj, "__globals__", {})
        parts += [(f"{name} (global `{g}`)", glob[g]) for g in code.co_names if g in glob]
        parts += [(f"{name} (default {i})", d) for i, d in enumerate(obj.__defaults__ or ())]
        return parts
    for attr in ("__self__", "func", "args", "keywords"):    # bound methods, partials
        if hasattr(obj, attr) and not isinstance(getattr(type(obj), attr, None), property):
            parts.append((f"{name}.{attr}", getattr(obj, attr)))
    state = getattr(obj, "__dict__", None)
    if isinstance(state, dict):
        for k, v in state.items():
            if isinstance(v, dict) and k.startswith("_"):     # nn.Module's _modules, ...
                parts += [(f"{name}.{kk}", vv) for kk, vv in v.items()]
            else:
                parts.append((f"{name}.{k}", v))
    for slot in getattr(type(obj), "__slots__", ()):
        if hasattr(obj, slot):
            parts.append((f"{name}.{slot}", getattr(obj, slot)))
    return parts
