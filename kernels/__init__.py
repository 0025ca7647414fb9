"""Numba kernels for fastnn's hot paths, installed as ``fastnn.kernels``.

One module per hot path. Kernels are ``@njit`` functions over arrays the caller allocated:
they check nothing, allocate nothing in their loops and keep no state. Every kernel has a
pure-NumPy twin of the same name and signature in ``fastnn.kernels.reference``.
"""
