"""Direct backpropagation with checkpoints at the saved times."""

from __future__ import annotations

import dataclasses

import torch
from torch.utils.checkpoint import checkpoint

from .._loop import integrate
from .._options import SolveOptions
from .._model import RHS
from .._problem import ODEProblem
from .._retcode import ReturnCode
from .._solution import Solution, Stats
from ._adjoint import param_spec

# (the numba backend's checkpointed adjoint raises the same)
NEEDS_SAVEAT = ("DirectAdjoint(checkpointing=True) checkpoints at the saved times: give "
                "`saveat` with at least two times")


def solve_checkpointed(problem: ODEProblem, solver, opts: SolveOptions) -> Solution:
    """Solve interval by interval between the saved times under torch's checkpointing."""
    if opts.saveat is None or len(opts.saveat) < 2:
        raise ValueError(NEEDS_SAVEAT)
    spec = param_spec(problem)
    times = [opts.t0, *[s for s in opts.saveat if s != opts.t0]]
    stats = Stats()
    us = [problem.u0] if opts.saveat[0] == opts.t0 else []
    u = problem.u0
    for t_from, t_to in zip(times, times[1:]):
        sub = dataclasses.replace(opts, t0=t_from, t1=t_to, saveat=[t_to], dense=False,
                                  tstops=[s for s in opts.tstops if t_from < s < t_to])

        box: dict = {}

        def interval(u_start, *theta, sub=sub, box=box):
            rhs = RHS(problem.f, spec.rebuild(list(theta[:len(spec.p_tensors)])), problem.jac)
            result = integrate(rhs, solver, u_start, rhs.first_call(sub.t0, u_start), sub)
            if "result" not in box:
                # Only the forward run is kept (its outputs carry no graph); keeping the
                # recomputation's would hold every interval's graph until backward ends.
                box["result"] = result
            return result.us[-1] if result.us else u_start

        u = checkpoint(interval, u, *spec.all, use_reentrant=False)
        result = box["result"]
        stats = stats + result.stats
        if result.retcode is not ReturnCode.Success:
            # the states saved so far belong to the first len(us) saved times
            t = torch.tensor(opts.saveat[:len(us)], dtype=u.dtype, device=u.device)
            partial = torch.stack(us) if us else problem.u0.new_zeros((0, *problem.u0.shape))
            return Solution(t=t, u=partial, retcode=result.retcode,
                            message=f"{result.detail}. {result.retcode.value}", stats=stats,
                            solver=solver)
        us.append(u)
    t = torch.tensor(opts.saveat, dtype=u.dtype, device=u.device)
    return Solution(t=t, u=torch.stack(us), retcode=ReturnCode.Success,
                    message=ReturnCode.Success.value, stats=stats, solver=solver)
