"""One model, three uses: trace it into sympy, print it as Julia, evaluate sympy with torch.

All three read the op table in `_ops.py`.
"""

from ._julia import to_julia as to_julia
from ._ops import OPS as OPS
from ._ops import sigmoid as sigmoid
from ._ops import softplus as softplus
from ._torch import to_torch as to_torch
from ._trace import SymbolicNN as SymbolicNN
from ._trace import TracedModel as TracedModel
from ._trace import trace as trace
