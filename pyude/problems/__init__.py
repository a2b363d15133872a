"""Standard problems, each a model written once plus a factory for its usual set-up.

Every model here runs on torch, traces into sympy and prints as Julia; the test suite
lints each one's Julia code.
"""

from ._library import BUILTIN as BUILTIN
from ._stiff import POLLU_RATES as POLLU_RATES
from ._stiff import hires as hires
from ._stiff import hires_problem as hires_problem
from ._stiff import pollu as pollu
from ._stiff import pollu_problem as pollu_problem
from ._stiff import vdpol as vdpol
from ._stiff import vdpol_problem as vdpol_problem
from ._library import exponential_growth as exponential_growth
from ._library import exponential_growth_problem as exponential_growth_problem
from ._library import lotka_volterra as lotka_volterra
from ._library import lotka_volterra_problem as lotka_volterra_problem
from ._library import lotka_volterra_ude as lotka_volterra_ude
from ._library import rober as rober
from ._library import rober_problem as rober_problem
from ._library import sine_ode as sine_ode
from ._library import sine_ode_problem as sine_ode_problem
from ._library import van_der_pol as van_der_pol
from ._library import van_der_pol_problem as van_der_pol_problem
