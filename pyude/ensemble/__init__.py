"""Ensembles: many solves of one problem with varying inputs, in this thread, over threads,
or over the workers of any `concurrent.futures.Executor` (a Dask cluster's
`client.get_executor()`, a `ProcessPoolExecutor`). See docs/ensembles.md."""

from ._problem import EnsembleProblem as EnsembleProblem
from ._solution import EnsembleSolution as EnsembleSolution
from ._solution import EnsembleSummary as EnsembleSummary
from ._solve import solve_ensemble as solve_ensemble
from ._strategies import AbstractEnsembleStrategy as AbstractEnsembleStrategy
from ._strategies import EnsembleDistributed as EnsembleDistributed
from ._strategies import EnsembleError as EnsembleError
from ._strategies import EnsembleSerial as EnsembleSerial
from ._strategies import EnsembleThreads as EnsembleThreads
