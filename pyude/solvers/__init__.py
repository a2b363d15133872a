"""Solvers, named as in OrdinaryDiffEq.jl."""

from ._autoswitch import AutoSwitch as AutoSwitch
from ._autoswitch import AutoTsit5 as AutoTsit5
from ._autoswitch import AutoVern7 as AutoVern7
from ._autoswitch import default_solver as default_solver

from ._base import AbstractSolver as AbstractSolver
from ._base import AbstractImplicitSolver as AbstractImplicitSolver
from ._erk import AbstractERK as AbstractERK
from ._rosenbrock import AbstractRosenbrock as AbstractRosenbrock
from ._sdirk import AbstractESDIRK as AbstractESDIRK
from ._sdirk import ESDIRKTableau as ESDIRKTableau
from ._rosenbrock import RosenbrockTableau as RosenbrockTableau
from ._tableau import ButcherTableau as ButcherTableau
from ._tableau import DenseTableau as DenseTableau
from .bs3 import BS3 as BS3
from .dp5 import DP5 as DP5
from .euler import Euler as Euler
from .heun import Heun as Heun
from .kencarp4 import KenCarp4 as KenCarp4
from .kvaerno5 import Kvaerno5 as Kvaerno5
from .midpoint import Midpoint as Midpoint
from .rk4 import RK4 as RK4
from .rodas4 import Rodas4 as Rodas4
from .rodas5p import Rodas5P as Rodas5P
from .rosenbrock23 import Rosenbrock23 as Rosenbrock23
from .trbdf2 import TRBDF2 as TRBDF2
from .tsit5 import Tsit5 as Tsit5
from .vern7 import Vern7 as Vern7
