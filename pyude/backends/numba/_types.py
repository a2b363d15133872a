"""The fixed signatures of the generated model functions.

Every kernel is compiled once, in pyude's own modules and cached by numba, with the model's
functions as first-class function values of these types. A new model then costs only the
compilation of its own small functions: a kernel typed by the dispatchers themselves would
be specialised (and compiled, seconds) again for every model and miss numba's cache in a
new process.
"""

from __future__ import annotations

from numba import types

_F64 = types.float64
VEC = _F64[::1]
MAT = _F64[:, ::1]
CUBE = _F64[:, :, ::1]
IVEC = types.int64[::1]

# rhs(t, u, p, out): out = f(t, u, p)
RHS_SIG = types.void(_F64, VEC, VEC, VEC)
# jac(t, u, p, J): J[i, j] = d f_i / d u_j
JAC_SIG = types.void(_F64, VEC, VEC, MAT)
# dfdt(t, u, p, out): out = d f / d t (zeros when f does not read t)
DFDT_SIG = RHS_SIG

RHS_FN = types.FunctionType(RHS_SIG)
JAC_FN = types.FunctionType(JAC_SIG)
DFDT_FN = types.FunctionType(DFDT_SIG)
