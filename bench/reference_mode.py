"""Run fastnn on the pure-NumPy twins of its kernels instead of the Numba kernels.

    from reference_mode import reference_kernels
    with reference_kernels():
        fastnn.fit(model, x, y, ...)  # every kernel call runs fastnn.kernels.reference

Each kernel module ``fastnn.kernels.<m>`` has a twin ``fastnn.kernels.reference.<m>`` with the
same public function names and signatures. For the duration of the ``with`` block the
context manager replaces

- every kernel on its ``fastnn.kernels.<m>`` module (what ``_k.relu_forward(...)`` and
  function-level ``from .kernels.x import y`` see), and
- every module-level name in the other loaded ``fastnn.*`` modules that is bound to a kernel
  (``from .kernels.batchnorm import batchnorm_forward_train``) with its twin, and any other
  Numba function bound there (the chunking helper ``n_chunks`` that ``fastnn.nn.normalization``
  calls to size a scratch buffer, which has no twin) with its plain-Python original,

and it turns the compiled training step and forward pass off (``fastnn.compiled(False)``: they
run a whole network in one Numba call, whose reference is the per-layer path), so that no
Numba-compiled code runs from Python; everything is restored on exit, also after an
exception. Kernels that call other Numba functions internally are never entered, so their
private helpers need no twin; a kernel's one-thread form that fastnn calls directly (listed in
its module's ``SERIAL_FORMS``) is replaced with that kernel's twin. A public kernel without a
twin raises ``LookupError``.
"""

import contextlib
import importlib
import pkgutil
import sys

from numba.core.dispatcher import Dispatcher

__all__ = ["kernel_twins", "reference_kernels"]

KERNELS = "fastnn.kernels"
REFERENCE = "fastnn.kernels.reference"


def _is_kernel_package(name):
    return name == KERNELS or name.startswith(KERNELS + ".")


def kernel_twins():
    """[(kernel module, name, kernel, twin)] for every public kernel of every kernel module.

    A kernel is a Numba dispatcher defined in its module (not imported into it) whose name does
    not start with an underscore. Raises ``LookupError`` naming the kernels without a twin.
    """
    reference = importlib.import_module(REFERENCE)
    pairs, missing = [], []
    for info in pkgutil.iter_modules(reference.__path__):
        if info.name.startswith("_"):
            continue
        kernels = importlib.import_module(f"{KERNELS}.{info.name}")
        twins = importlib.import_module(f"{REFERENCE}.{info.name}")
        for name, value in vars(kernels).items():
            if name.startswith("_") or not isinstance(value, Dispatcher):
                continue
            if value.py_func.__module__ != kernels.__name__:
                continue  # imported helpers such as _config.n_chunks
            twin = getattr(twins, name, None)
            if twin is None or isinstance(twin, Dispatcher):
                missing.append(f"{kernels.__name__}.{name}")
            else:
                pairs.append((kernels, name, value, twin))
    if missing:
        raise LookupError(f"kernels without a NumPy twin in {REFERENCE}: {', '.join(missing)}")
    return pairs


def _user_modules():
    """The loaded fastnn modules outside fastnn.kernels, the ones that call kernels (each once:
    fastnn registers some under a second, older name, e.g. fastnn.datasets)."""
    found = {
        id(module): module
        for name, module in list(sys.modules.items())
        if module is not None
        and (name == "fastnn" or name.startswith("fastnn."))
        and not _is_kernel_package(module.__name__)
    }
    return list(found.values())


def _replacements():
    """[(module, attribute, new value)] for reference mode."""
    importlib.import_module("fastnn")
    pairs = kernel_twins()
    patches = [(module, name, twin) for module, name, _, twin in pairs]
    twin_of = {id(kernel): twin for _, _, kernel, twin in pairs}
    # A kernel module's one-thread forms of its kernels (SERIAL_FORMS: private name -> the
    # public kernel it equals), which fastnn calls for small work: the public kernel's twin.
    for module in {id(m): m for m, _, _, _ in pairs}.values():
        twins = {name: twin for m, name, _, twin in pairs if m is module}
        for private, public in getattr(module, "SERIAL_FORMS", {}).items():
            patches.append((module, private, twins[public]))
    for module in _user_modules():
        for name, value in list(vars(module).items()):
            if not isinstance(value, Dispatcher):
                continue
            if id(value) in twin_of:
                patches.append((module, name, twin_of[id(value)]))
            elif _is_kernel_package(value.py_func.__module__):
                patches.append((module, name, value.py_func))
    return patches


@contextlib.contextmanager
def reference_kernels():
    """Swap every kernel for its NumPy twin inside the block; yields the list of
    ``"module.attribute"`` names it replaced."""
    import fastnn

    saved = []
    off = fastnn.compiled(False)
    off.__enter__()
    try:
        for module, name, new in _replacements():
            saved.append((module, name, getattr(module, name)))
            setattr(module, name, new)
        yield [f"{module.__name__}.{name}" for module, name, _ in saved]
    finally:
        for module, name, old in reversed(saved):
            setattr(module, name, old)
        off.__exit__(None, None, None)
