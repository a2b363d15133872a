"""A solver as the kernels read it: its family, order and tableau arrays (the same data as
the torch steppers), with placeholders for the families it does not use."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...solvers._autoswitch import AutoSwitch
from ...solvers._base import AbstractSolver
from ...solvers._erk import AbstractERK
from ...solvers._rosenbrock import AbstractRosenbrock
from ...solvers._sdirk import AbstractESDIRK
from ._erk import empty_erk, pack_erk
from ._esdirk import esdirk_arrays
from ._loop import FAMILY_ERK, FAMILY_ESDIRK, FAMILY_ROSENBROCK
from ._rosenbrock import rosenbrock_arrays
from ._switch import pack_switch

_NO_ROSENBROCK = (np.zeros((1, 1)), np.zeros((1, 1)), np.zeros(1), np.zeros(1), np.zeros(1),
                  np.zeros(1), np.zeros(1, dtype=np.int64), 1.0, 0)
_NO_ESDIRK = (np.zeros((1, 1)), np.zeros(1), np.zeros(1), np.zeros(1), 1.0, 0)


def family_of(solver: AbstractSolver) -> int | None:
    """The kernel family of a single method (None when no kernel takes it)."""
    if isinstance(solver, AbstractERK):
        return FAMILY_ERK
    if isinstance(solver, AbstractRosenbrock):
        return FAMILY_ROSENBROCK
    if isinstance(solver, AbstractESDIRK):
        return FAMILY_ESDIRK
    return None


def supported(solver: AbstractSolver) -> bool:
    if isinstance(solver, AutoSwitch):
        return family_of(solver.nonstiff) == FAMILY_ERK and family_of(solver.stiff) in (
            FAMILY_ROSENBROCK, FAMILY_ESDIRK)
    return family_of(solver) is not None


def needs_jacobian(solver: AbstractSolver) -> bool:
    return family_of(getattr(solver, "stiff", solver)) in (FAMILY_ROSENBROCK, FAMILY_ESDIRK)


@dataclass(frozen=True)
class MethodArrays:
    family: int            # the single method's, or the stiff one's under a switch
    order: int             # the stiff method's order (the explicit one's is in its flags)
    erk: tuple
    rosenbrock: tuple
    rosenbrock_dense: np.ndarray
    esdirk: tuple
    switch: np.ndarray
    families: frozenset     # the families whose steps the solve takes


_PACKED: dict = {}


def pack_method(solver: AbstractSolver) -> MethodArrays:
    """The solver's arrays, made once per solver (solvers are frozen and hashable)."""
    packed = _PACKED.get(solver)
    if packed is None:
        packed = _PACKED[solver] = _pack(solver)
    return packed


def _pack(solver: AbstractSolver) -> MethodArrays:
    explicit = solver.nonstiff if isinstance(solver, AutoSwitch) else solver
    stiff = solver.stiff if isinstance(solver, AutoSwitch) else solver
    erk = pack_erk(explicit) if isinstance(explicit, AbstractERK) else empty_erk()
    family = family_of(stiff)
    rosenbrock, dense = _NO_ROSENBROCK, np.zeros((0, 0))
    if family == FAMILY_ROSENBROCK:
        rosenbrock = rosenbrock_arrays(stiff)
        if stiff.tableau.dense is not None:
            dense = np.ascontiguousarray(stiff.tableau.dense.poly, dtype=np.float64)
    esdirk = esdirk_arrays(stiff) if family == FAMILY_ESDIRK else _NO_ESDIRK
    families = frozenset({family, family_of(explicit)})
    return MethodArrays(family, int(stiff.order), erk.astuple(), rosenbrock, dense, esdirk,
                        pack_switch(solver), families)
