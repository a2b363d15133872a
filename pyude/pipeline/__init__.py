"""The equation-discovery pipeline: noisy data -> UDE fit -> symbolic regression of the network
terms -> refit of the discovered model through the ODE -> extrapolation check -> report.

`run(...)` is what `pyude demo` and `pyude discover` call; it writes `report.md`,
`results.json` and PNG plots into a folder and returns the results as a dict.

The modules: `_problems` (what a discovery problem is, the built-in ones, a user's file),
`_data` (simulated or read observations, the noise estimate), `_candidates` and
`_selection` (the structure search and its budget), `_options` (the run's options checked
before any work, the report folder), `_output` (results.json as the run goes, the search's
progress), `_report` (report.md and the terminal summary), `_plots`, and `_run` (the stages
in order).
"""

from ._candidates import shortlist as shortlist
from ._data import load_data as load_data
from ._data import make_data as make_data
from ._problems import PROBLEMS as PROBLEMS
from ._problems import DiscoveryProblem as DiscoveryProblem
from ._problems import load_problem as load_problem
from ._report import summary as summary
from ._run import InternalError as InternalError
from ._run import PipelineError as PipelineError
from ._run import make_network as make_network
from ._run import run as run
from ._selection import select_structure as select_structure
from ._selection import structure_recovered as structure_recovered
