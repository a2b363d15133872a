"""Networks in compiled models: the feed-forward subset (`nn.Sequential` of `nn.Linear` and
element-wise activations, `pyude.nn.lux_layers`) evaluated by one generic compiled MLP,
with its vector-Jacobian product and Jacobian.

One evaluator serves every network shape: the layers are described by a spec array
(`spec[l] = (in, out, activation code)`), and the weights are a run-time vector, so a
training step never recompiles anything. The weights sit in the model's parameter vector
`p` after the physical parameters (from `offset` on), in Lux order (per layer vec(W)
column-major, then b; `lux_flat`), so the kernels' gradient with respect to `p` holds the
weights' gradient too.

The generated model code (`_adjoint_codegen`) calls `mlp_forward`, `mlp_vjp` and
`mlp_jacobian` as module-level functions with the spec as a constant array.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch
from numba import njit
from torch import Tensor, nn

from ...nn import RBF

# activation codes
ACT_IDENTITY, ACT_TANH, ACT_RELU, ACT_SIGMOID, ACT_SOFTPLUS = 0, 1, 2, 3, 4
ACT_GELU, ACT_GELU_TANH, ACT_RBF = 5, 6, 7

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


class NetworkNotCompilable(ValueError):
    """The network is outside the compiled subset; the message names the layer."""


def _activation_code(module: nn.Module) -> int:
    if isinstance(module, nn.Tanh):
        return ACT_TANH
    if isinstance(module, nn.ReLU):
        return ACT_RELU
    if isinstance(module, nn.Sigmoid):
        return ACT_SIGMOID
    if isinstance(module, nn.Softplus):
        if module.beta != 1 or module.threshold != 20:
            raise NetworkNotCompilable("nn.Softplus with beta != 1 or threshold != 20 is "
                                       "outside the compiled subset")
        return ACT_SOFTPLUS
    if isinstance(module, nn.GELU):
        return ACT_GELU_TANH if module.approximate == "tanh" else ACT_GELU
    if isinstance(module, RBF):
        return ACT_RBF
    if isinstance(module, nn.Identity):
        return ACT_IDENTITY
    return -1


def layer_spec(net: nn.Module) -> np.ndarray:
    """`spec[l] = (in, out, activation code)` for each Linear layer (with the activation
    that follows it), or `NetworkNotCompilable` naming the first layer outside the subset."""
    if not isinstance(net, nn.Sequential):
        raise NetworkNotCompilable(
            f"the network is a {type(net).__name__}; the numba backend compiles an "
            f"nn.Sequential of nn.Linear and element-wise activations (tanh, relu, sigmoid, "
            f"softplus, gelu, pyude.nn.RBF, identity)")
    rows: list[list[int]] = []
    for i, module in enumerate(net):
        if isinstance(module, nn.Linear):
            if module.bias is None:
                raise NetworkNotCompilable(f"layer {i} (nn.Linear without bias) is outside "
                                           f"the compiled subset; use bias=True")
            rows.append([module.in_features, module.out_features, ACT_IDENTITY])
            continue
        code = _activation_code(module)
        if code < 0 or not rows or rows[-1][2] != ACT_IDENTITY:
            raise NetworkNotCompilable(
                f"layer {i} ({type(module).__name__}) is outside the compiled subset: "
                f"nn.Linear followed by at most one of Tanh, ReLU, Sigmoid, Softplus, GELU, "
                f"pyude.nn.RBF, Identity")
        rows[-1][2] = code
    if not rows:
        raise NetworkNotCompilable("the network has no nn.Linear layer")
    for a, b in itertools.pairwise(rows):
        if a[1] != b[0]:
            raise NetworkNotCompilable(f"layer sizes do not chain ({a[1]} -> {b[0]})")
    return np.array(rows, dtype=np.int64)


def lux_flat(net: nn.Sequential) -> Tensor:
    """The weights as one differentiable float64 vector in Lux order: per layer vec(W)
    column-major (W.T flattened row by row), then the bias."""
    parts = []
    for module in net:
        if isinstance(module, nn.Linear):
            parts += [module.weight.t().reshape(-1), module.bias]
    return torch.cat(parts).to(torch.float64)


def n_weights(spec: np.ndarray) -> int:
    return int(sum(a * b + b for a, b, _ in spec))


def n_activations(spec: np.ndarray) -> int:
    return int(sum(b for _, b, _ in spec))


@njit(cache=True)
def _act(code, x):
    if code == ACT_IDENTITY:
        return x
    if code == ACT_TANH:
        return math.tanh(x)
    if code == ACT_RELU:
        return max(0.0, x)
    if code == ACT_SIGMOID:
        return 1.0 / (1.0 + math.exp(-x))
    if code == ACT_SOFTPLUS:
        return x if x > 20.0 else math.log1p(math.exp(x))
    if code == ACT_GELU:
        return 0.5 * x * (1.0 + math.erf(x * _INV_SQRT_2))
    if code == ACT_GELU_TANH:
        return 0.5 * x * (1.0 + math.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)))
    return math.exp(-x * x)                               # RBF


@njit(cache=True)
def _dact(code, x, y):
    """d act / dx at pre-activation x with y = act(x)."""
    if code == ACT_IDENTITY:
        return 1.0
    if code == ACT_TANH:
        return 1.0 - y * y
    if code == ACT_RELU:
        return 1.0 if x > 0.0 else 0.0
    if code == ACT_SIGMOID:
        return y * (1.0 - y)
    if code == ACT_SOFTPLUS:
        return 1.0 if x > 20.0 else 1.0 / (1.0 + math.exp(-x))
    if code == ACT_GELU:
        return (0.5 * (1.0 + math.erf(x * _INV_SQRT_2))
                + x * _INV_SQRT_2PI * math.exp(-0.5 * x * x))
    if code == ACT_GELU_TANH:
        inner = _SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)
        th = math.tanh(inner)
        return (0.5 * (1.0 + th) + 0.5 * x * (1.0 - th * th) * _SQRT_2_OVER_PI
                * (1.0 + 3.0 * 0.044715 * x * x))
    return -2.0 * x * y                                   # RBF


@njit(cache=True)
def mlp_forward(spec, w, offset, x, pre, post):
    """Run the network on x with weights w[offset:]: pre- and post-activations of every
    layer, concatenated, in `pre` and `post`; the output is the last layer's rows of
    `post` (from n_activations - out_last on)."""
    wpos = offset
    apos = 0
    for layer in range(spec.shape[0]):
        n_in, n_out, code = spec[layer, 0], spec[layer, 1], spec[layer, 2]
        bpos = wpos + n_in * n_out
        for o in range(n_out):
            acc = w[bpos + o]
            for i in range(n_in):
                xi = x[i] if layer == 0 else post[apos - n_in + i]
                acc += w[wpos + i * n_out + o] * xi
            pre[apos + o] = acc
            post[apos + o] = _act(code, acc)
        wpos = bpos + n_out
        apos += n_out


@njit(cache=True)
def mlp_vjp(spec, w, offset, x, pre, post, gy, gx, gw, work):
    """The vector-Jacobian product of `mlp_forward` (run first, giving pre and post) with
    the output cotangent gy: gx = (dy/dx)^T gy, and (dy/dw)^T gy added to gw[offset:].
    `work` has room for two layers' widths (2 * max width)."""
    nl = spec.shape[0]
    width = 0
    for layer in range(nl):
        width = max(width, spec[layer, 0], spec[layer, 1])
    g = work[:width]
    gin = work[width:2 * width]
    n_last = spec[nl - 1, 1]
    for o in range(n_last):
        g[o] = gy[o]
    wend = offset
    for layer in range(nl):
        wend += spec[layer, 0] * spec[layer, 1] + spec[layer, 1]
    aend = 0
    for layer in range(nl):
        aend += spec[layer, 1]
    for layer in range(nl - 1, -1, -1):
        n_in, n_out, code = spec[layer, 0], spec[layer, 1], spec[layer, 2]
        bpos = wend - n_out
        wpos = bpos - n_in * n_out
        apos = aend - n_out
        for o in range(n_out):
            g[o] *= _dact(code, pre[apos + o], post[apos + o])
            gw[bpos + o] += g[o]
        for i in range(n_in):
            xi = x[i] if layer == 0 else post[apos - n_in + i]
            acc = 0.0
            for o in range(n_out):
                gw[wpos + i * n_out + o] += g[o] * xi
                acc += w[wpos + i * n_out + o] * g[o]
            gin[i] = acc
        for i in range(n_in):
            g[i] = gin[i]
        wend = wpos
        aend = apos
    for i in range(spec[0, 0]):
        gx[i] = g[i]


@njit(cache=True)
def mlp_jacobian(spec, w, offset, x, pre, post, Jn):
    """Jn[k, i] = d y_k / d x_i at x (after `mlp_forward`), by forward products layer by
    layer."""
    nl = spec.shape[0]
    width = 0
    for layer in range(nl):
        width = max(width, spec[layer, 0], spec[layer, 1])
    n0 = spec[0, 0]
    cur = np.zeros((width, n0))
    nxt = np.zeros((width, n0))
    for i in range(n0):
        cur[i, i] = 1.0
    wpos = offset
    apos = 0
    for layer in range(nl):
        n_in, n_out, code = spec[layer, 0], spec[layer, 1], spec[layer, 2]
        for o in range(n_out):
            d = _dact(code, pre[apos + o], post[apos + o])
            for c in range(n0):
                acc = 0.0
                for i in range(n_in):
                    acc += w[wpos + i * n_out + o] * cur[i, c]
                nxt[o, c] = d * acc
        for o in range(n_out):
            for c in range(n0):
                cur[o, c] = nxt[o, c]
        wpos += n_in * n_out + n_out
        apos += n_out
    for k in range(spec[nl - 1, 1]):
        for c in range(n0):
            Jn[k, c] = cur[k, c]
