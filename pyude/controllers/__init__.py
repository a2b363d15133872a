"""Step-size control."""

from ._initdt import initial_dt as initial_dt
from ._pi import ControllerState as ControllerState
from ._pi import PIController as PIController
from ._predictive import PredictiveController as PredictiveController
