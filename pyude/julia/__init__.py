"""The Python side of the Julia backend: the only module that imports juliacall.

Nothing here runs at `import pyude`; Julia starts on the first solve with `backend="julia"`
(or `"auto"` when Julia is installed). The model crosses to Julia as generated Julia source
(from the same traced model the native backend runs) and the network as a Lux `Chain` over the
same flat weights; only arrays cross back.

Getting Julia: `pip install pyude[julia]`; the first import of juliacall installs Julia and the
packages listed in pyude's `juliapkg.json` (this takes minutes, once). To avoid a known crash,
import juliacall before torch (and so before pyude) in programs that use this backend.
"""

from ._runtime import JuliaUnavailableError as JuliaUnavailableError
from ._runtime import available as available
from ._runtime import configure as configure
from ._runtime import diffeqpy_de as diffeqpy_de
from ._runtime import doctor_report as doctor_report
from ._runtime import init as init
from ._runtime import start_failure as start_failure
from ._solve import auto_refusal as auto_refusal
from ._solve import solve as solve
from ._solve import to_diffeqpy as to_diffeqpy
