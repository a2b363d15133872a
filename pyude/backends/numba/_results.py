"""A numba solve's inputs and results: the options and the method packed into the kernels'
arrays, and the kernels' outputs turned into a `Solution` (shared by the plain solve and the
solve with a gradient)."""

from __future__ import annotations

import math

import numpy as np
import torch

from ..._loop import landing_stops
from ..._options import SolveOptions
from ..._model import RHS
from ..._problem import ODEProblem
from ..._retcode import ReturnCode
from ..._solution import Solution, Stats
from ...solvers._autoswitch import AutoSwitch
from ...solvers._base import AbstractSolver
from . import _loop as lp
from ._control import pack_controller
from ._dense import DenseOutput
from ._steps import steps_for

_RETCODES = {
    lp.RC_SUCCESS: ReturnCode.Success, lp.RC_MAXITERS: ReturnCode.MaxIters,
    lp.RC_DTMIN: ReturnCode.DtLessThanMin, lp.RC_DT_NO_CHANGE: ReturnCode.DtLessThanMin,
    lp.RC_UNSTABLE: ReturnCode.Unstable, lp.RC_CONVERGENCE: ReturnCode.ConvergenceFailure,
}
# A batch's retcode is its worst trajectory's, in this order of severity.
_SEVERITY = [ReturnCode.Success, ReturnCode.MaxIters, ReturnCode.DtLessThanMin,
             ReturnCode.ConvergenceFailure, ReturnCode.Unstable]


def _detail(code: int, info: np.ndarray, o: SolveOptions) -> str:
    """The torch loop's words for how the solve ended."""
    t, dt = info[lp.INFO_T], info[lp.INFO_DT]
    if code == lp.RC_MAXITERS:
        return f"maxiters={o.maxiters} reached at t={t:.9g}"
    if code == lp.RC_DTMIN:
        return f"|dt|={abs(dt):.3g} < dtmin={o.dtmin:.3g} at t={t:.9g}"
    if code == lp.RC_DT_NO_CHANGE:
        return f"the step {dt:.3g} no longer changes t={t:.17g} in floating point"
    if code == lp.RC_UNSTABLE:
        return f"a step from t={t:.9g} gave a NaN or Inf state"
    if code == lp.RC_CONVERGENCE:
        failures = int(info[lp.INFO_FAILURES])
        return f"{failures} step attempts from t={t:.9g} failed, down to dt={dt:.3g}"
    return ""


def _message(code: int, info: np.ndarray, o: SolveOptions) -> str:
    retcode = _RETCODES[code]
    return retcode.value if retcode.successful else f"{_detail(code, info, o)}. {retcode.value}"


def _per_state(x, n: int) -> np.ndarray:
    arr = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    return np.broadcast_to(np.asarray(arr, dtype=np.float64), (n,)).copy()   # (writable)


def _stops(o: SolveOptions) -> np.ndarray:
    return np.asarray(landing_stops(o.tstops + [o.t1], o.t0, o.tdir), dtype=np.float64)


def _config(o: SolveOptions, family: int, order: int, dense: bool) -> np.ndarray:
    cfg = np.zeros(lp.CFG_SIZE)
    cfg[lp.CFG_T0], cfg[lp.CFG_T1] = o.t0, o.t1
    cfg[lp.CFG_DT] = math.nan if o.dt is None else o.dt
    cfg[lp.CFG_DTMIN], cfg[lp.CFG_DTMAX] = o.dtmin, o.dtmax
    cfg[lp.CFG_MAXITERS] = o.maxiters
    cfg[lp.CFG_ADAPTIVE] = float(o.adaptive)
    cfg[lp.CFG_DENSE] = float(dense)
    cfg[lp.CFG_SAVEAT] = float(o.saveat is not None)
    cfg[lp.CFG_FAMILY] = family
    cfg[lp.CFG_ORDER] = order
    return cfg


def _inputs(problem: ODEProblem, method, o: SolveOptions, dense: bool):
    n = problem.n_states
    saveat = np.asarray(o.saveat if o.saveat is not None else [], dtype=np.float64)
    return (_config(o, method.family, method.order, dense), pack_controller(o.controller),
            method.switch, _per_state(o.rtol, n), _per_state(o.atol, n), _stops(o), saveat,
            *method.erk, method.rosenbrock, method.rosenbrock_dense, method.esdirk,
            *steps_for(method.families))


def _stats(out: np.ndarray) -> Stats:
    """The counters of one trajectory, or summed over a batch's rows."""
    total = out.reshape(-1, lp.OUT_SIZE).sum(axis=0)
    return Stats(nf=int(total[lp.OUT_NF]), naccept=int(total[lp.OUT_NACCEPT]),
                 nreject=int(total[lp.OUT_NREJECT]), njacs=int(total[lp.OUT_NJACS]),
                 nw=int(total[lp.OUT_NW]), nsolve=int(total[lp.OUT_NSOLVE]))


def _stage_rows(method, families: np.ndarray) -> np.ndarray:
    rows = {lp.FAMILY_ERK: method.erk[0].shape[0],
            lp.FAMILY_ROSENBROCK: method.rosenbrock[0].shape[0],
            lp.FAMILY_ESDIRK: method.esdirk[0].shape[0]}
    return np.array([rows[int(f)] for f in families], dtype=np.int64)


def _single_solution(problem, solver, method, o: SolveOptions, result) -> Solution:
    ts, us, out, info, steps, step_u, step_f, step_k, families = result
    saved, nsteps = int(out[lp.OUT_NSAVED]), int(out[lp.OUT_NSTEPS])
    families = families[:int(out[lp.OUT_NACCEPT])]
    methods = None
    if isinstance(solver, AutoSwitch):
        methods = [solver.nonstiff if f == lp.FAMILY_ERK else solver.stiff for f in families]
    dense = None
    if o.dense:
        dense = DenseOutput(solver, steps[:nsteps], step_u[:nsteps + 1], step_f[:nsteps + 1],
                            step_k[:nsteps], _stage_rows(method, families[:nsteps]), methods,
                            RHS(problem.f, problem.p), o.tdir)
    code = int(out[lp.OUT_RETCODE])
    return make_solution(ts[:saved], us[:saved], _RETCODES[code], _message(code, info, o),
                         _stats(out), solver, dense, o.tdir, methods, None)


def _batch_solution(problem, solver, o: SolveOptions, us, outs, infos) -> Solution:
    batch, n = problem.batch_shape, problem.n_states
    codes = [_RETCODES[int(c)] for c in outs[:, lp.OUT_RETCODE]]
    worst = max(range(len(codes)), key=lambda b: _SEVERITY.index(codes[b]))
    code = int(outs[worst, lp.OUT_RETCODE])
    message = _message(code, infos[worst], o)
    if not codes[worst].successful:
        message = f"trajectory {worst} of the batch (flattened): {message}"
    saved = np.moveaxis(us, 1, 0).reshape(len(o.saveat), *batch, n)
    retcodes = np.array(codes, dtype=object).reshape(batch)
    return make_solution(np.asarray(o.saveat), saved, codes[worst], message, _stats(outs),
                         solver, None, o.tdir, None, retcodes)


def make_solution(t: np.ndarray, u: np.ndarray, retcode: ReturnCode, message: str,
                  stats: Stats, solver: AbstractSolver, dense: DenseOutput | None,
                  tdir: float, methods, retcodes) -> Solution:
    """The one place a numba solve becomes a `Solution`."""
    return Solution(t=torch.from_numpy(np.ascontiguousarray(t, dtype=np.float64)),
                    u=torch.from_numpy(np.ascontiguousarray(u)), retcode=retcode,
                    message=message, stats=stats, solver=solver, dense=dense,
                    methods=methods,
                    retcodes=retcodes if retcodes is not None else np.array(retcode,
                                                                            dtype=object))
