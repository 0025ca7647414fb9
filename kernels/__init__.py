"""Numba kernels for fastnn's hot paths, installed as ``fastnn.kernels``.

One module per hot path. Kernels work on arrays the caller allocated: they check nothing,
allocate nothing in their loops and keep no state. Most are ``@njit`` functions; the affine
pair (``affine_forward``/``affine_backward``) are plain Python that hand the matrix products to
NumPy's BLAS and the rest to compiled passes (``bias_act_forward``/``bias_act_backward``).
Every kernel has a pure-NumPy twin of the same name and signature in
``fastnn.kernels.reference``. Nothing here imports the rest of fastnn.
"""
