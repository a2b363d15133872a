"""Backends that solve a problem somewhere other than in eager torch.

`numba` compiles the traced model and runs whole solves as numba kernels.
"""
