"""Return codes of a solve, named as in SciMLBase so that both backends map 1:1."""

from __future__ import annotations

import enum


class ReturnCode(enum.Enum):
    """How a solve ended. The value is the advice shown to the user when it is not a success."""

    Success = "The solve reached the end of the time span."
    Terminated = "The solve was stopped early by request."
    MaxIters = (
        "The solver reached `maxiters` steps before the end of the time span. "
        "Raise `maxiters`, loosen `rtol`/`atol`, or, if the step size collapsed, "
        "the problem may be stiff: try a stiff solver."
    )
    DtLessThanMin = (
        "The step size fell below `dtmin`. The solution may blow up here (a singularity), "
        "or the problem is stiff for this solver: try a stiff solver or loosen `dtmin`."
    )
    Unstable = (
        "The state became NaN or Inf. The solution blew up, or `f` returned a non-finite "
        "value; check `f` and the parameters, or shorten the time span."
    )
    DtNaN = "The step size became NaN. `f` probably returned NaN at the start."
    ConvergenceFailure = (
        "The nonlinear (Newton) iteration of an implicit method failed to converge even "
        "after shrinking the step. Check the Jacobian, or loosen the tolerances."
    )
    InitialFailure = "The initial state could not be evaluated."
    Failure = "The solve failed."

    @property
    def successful(self) -> bool:
        return self in (ReturnCode.Success, ReturnCode.Terminated)

    def __str__(self) -> str:
        return f"ReturnCode.{self.name}"
