"""pyude: stiff and adjoint ODE solvers, universal differential equations and equation
discovery, compiled (the `numba` backend, the default where a model qualifies), on torch (the
`native` backend) or on Julia's DifferentialEquations.jl.

`import pyude` loads torch, numpy and sympy only; numba, Julia, PySR, Dask and the other
optional pieces are imported on first use.
"""

from . import discovery as discovery
from . import julia as julia
from . import nn as nn
from . import ops as ops
from . import pipeline as pipeline
from . import problems as problems
from . import symbolic as symbolic
from ._errors import SolverError as SolverError
from ._errors import UnsupportedOperationError as UnsupportedOperationError
from ._model import Params as Params
from ._modules import UDE as UDE
from .train import FitResult as FitResult
from .train import fit as fit
from .discovery import discover as discover
from ._modules import NeuralODE as NeuralODE
from ._problem import ODEProblem as ODEProblem
from ._retcode import ReturnCode as ReturnCode
from ._solution import Solution as Solution
from ._solution import Stats as Stats
from ._front import solve as solve
from .sensitivity import BacksolveAdjoint as BacksolveAdjoint
from .sensitivity import DirectAdjoint as DirectAdjoint
from .sensitivity import InterpolatingAdjoint as InterpolatingAdjoint
from .sensitivity import GaussAdjoint as GaussAdjoint
from .sensitivity import QuadratureAdjoint as QuadratureAdjoint
from .controllers import PIController as PIController
from .controllers import PredictiveController as PredictiveController
from .solvers import BS3 as BS3
from .solvers import AutoSwitch as AutoSwitch
from .solvers import AutoTsit5 as AutoTsit5
from .solvers import AutoVern7 as AutoVern7
from .solvers import DP5 as DP5
from .solvers import RK4 as RK4
from .solvers import Rodas4 as Rodas4
from .solvers import Rodas5P as Rodas5P
from .solvers import Rosenbrock23 as Rosenbrock23
from .solvers import Euler as Euler
from .solvers import Heun as Heun
from .solvers import KenCarp4 as KenCarp4
from .solvers import Kvaerno5 as Kvaerno5
from .solvers import Midpoint as Midpoint
from .solvers import TRBDF2 as TRBDF2
from .solvers import Tsit5 as Tsit5
from .solvers import Vern7 as Vern7
from . import ensemble as ensemble
from .ensemble import EnsembleDistributed as EnsembleDistributed
from .ensemble import EnsembleError as EnsembleError
from .ensemble import EnsembleProblem as EnsembleProblem
from .ensemble import EnsembleSerial as EnsembleSerial
from .ensemble import EnsembleSolution as EnsembleSolution
from .ensemble import EnsembleSummary as EnsembleSummary
from .ensemble import EnsembleThreads as EnsembleThreads
from .ensemble import solve_ensemble as solve_ensemble

from ._version import __version__ as __version__
