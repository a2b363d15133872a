"""Sensitivity algorithms for `solve(..., sensealg=...)`, named as in SciMLSensitivity."""

from ._base import AbstractSensitivity as AbstractSensitivity
from ._base import DirectAdjoint as DirectAdjoint
from ._continuous import AbstractContinuousAdjoint as AbstractContinuousAdjoint
from ._continuous import BacksolveAdjoint as BacksolveAdjoint
from ._continuous import GaussAdjoint as GaussAdjoint
from ._continuous import InterpolatingAdjoint as InterpolatingAdjoint
from ._continuous import QuadratureAdjoint as QuadratureAdjoint
