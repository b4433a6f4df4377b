"""Compile flags for every kernel, in one place.

No kernel writes ``cache``, ``fastmath``, ``nogil``, ``parallel`` or ``error_model``
literally; they all use :data:`JIT` through :func:`jit`.

``fastmath`` allows reassociation (so float32 reductions vectorize), contraction into
FMA, no signed zeros and reciprocal approximations. It does *not* include ``nnan`` or
``ninf``: the compiler may not assume values are finite, so NaN checks keep working.
"""

from numba import njit

FASTMATH = frozenset({"reassoc", "contract", "nsz", "arcp"})

JIT = {
    "cache": True,  # compiled machine code is kept on disk between sessions
    "nogil": True,  # kernels release the GIL
    "fastmath": set(FASTMATH),
    "error_model": "numpy",  # 1/0 gives inf, as NumPy does; no ZeroDivisionError
    "parallel": False,
}


def jit(func):
    """Compile ``func`` with the project's flags (:data:`JIT`)."""
    return njit(**JIT)(func)
