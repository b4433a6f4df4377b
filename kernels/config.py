"""Compile flags for every kernel, in one place.

No kernel writes ``cache``, ``fastmath``, ``nogil``, ``parallel`` or ``error_model``
literally; they all use :data:`JIT` through :func:`jit`.

``fastmath`` allows reassociation (so float32 reductions vectorize), contraction into
FMA, no signed zeros and reciprocal approximations. It does *not* include ``nnan`` or
``ninf``: the compiler may not assume values are finite, so NaN checks keep working.

``cache`` keeps compiled machine code on disk between sessions, where Numba finds a
writable place for it: ``NUMBA_CACHE_DIR`` if set, else the ``__pycache__`` folder
next to these files, else the user-wide cache folder (``~/.cache/numba`` on Linux).
On a read-only installation with none of these writable, Numba would refuse to
define the kernels at all; :func:`cache_available` finds that out once, at import,
and the kernels are then compiled in memory on every start instead, with one
:class:`CacheWarning` that says to set ``NUMBA_CACHE_DIR``.

The BLAS that the kernels' matmuls call is held to one thread by :mod:`.blas`.
"""

import os
import types
import warnings

from numba import njit
from numba.core.registry import CPUDispatcher

FASTMATH = frozenset({"reassoc", "contract", "nsz", "arcp"})


class CacheWarning(UserWarning):
    """Numba has nowhere to keep fastnn's compiled kernels; they are not cached."""


def cache_available() -> bool:
    """Whether Numba can cache functions defined in this folder.

    Asks Numba itself: defining a ``cache=True`` function runs its search for a
    writable cache location (the same one every kernel here would get, since they
    share this folder) and raises ``RuntimeError`` when there is none. Nothing is
    compiled.
    """

    def probe():  # pragma: no cover - never called, only located
        return None

    try:
        njit(cache=True)(probe)
    except RuntimeError:
        return False
    return True


CACHE = cache_available()

JIT = {
    "cache": CACHE,  # compiled machine code is kept on disk between sessions
    "nogil": True,  # kernels release the GIL
    "fastmath": set(FASTMATH),
    "error_model": "numpy",  # 1/0 gives inf, as NumPy does; no ZeroDivisionError
    "parallel": False,
}


def _cache_folders():
    """Where Numba looked for a writable cache folder, for the warning."""
    from numba.core import config
    from numba.misc.appdirs import AppDirs

    here = os.path.dirname(os.path.abspath(__file__))
    user = AppDirs(appname="numba", appauthor=False).user_cache_dir
    given = config.CACHE_DIR or "unset"
    return f"{os.path.join(here, '__pycache__')}, NUMBA_CACHE_DIR ({given}), {user}"


if not CACHE:
    warnings.warn(
        "fastnn cannot cache its compiled kernels, so they are compiled again in "
        f"every process: Numba found no writable cache folder ({_cache_folders()}). "
        "Set NUMBA_CACHE_DIR to a writable folder to keep them.",
        CacheWarning,
        stacklevel=2,
    )


def jit(func):
    """Compile ``func`` with the project's flags (:data:`JIT`): a kernel that Python
    and compiled code may both call."""
    return njit(**JIT)(func)


#: Flags of the kernels that only compiled code calls (:func:`internal`).
INTERNAL = {"no_cpython_wrapper": True, "no_cfunc_wrapper": True}


class _InternalKernel(CPUDispatcher):
    """An :func:`internal` kernel: Numba's dispatcher, minus the call from Python."""

    def __call__(self, *args, **kwargs):
        public_name = self.__name__.lstrip("_")
        raise TypeError(
            f"{self.__module__}.{self.__name__} is internal to fastnn.kernels and has "
            f"no Python entry point: call it from compiled code, or call the public "
            f"kernel ({public_name}, if there is one) from Python"
        )


def _refuse_python_calls(kernel):
    if isinstance(kernel, CPUDispatcher):  # not under NUMBA_DISABLE_JIT
        kernel.__class__ = _InternalKernel
    return kernel


def internal(func):
    """Compile ``func`` as a kernel that only other kernels call.

    Numba builds two wrappers around every function it compiles, one to call it from
    Python and one to take its address, and they cost as much to compile as a small
    kernel. A kernel that only compiled code calls needs neither, and leaving them
    out of the helpers under a training step cuts its cold compile time by a fifth.
    Numba would crash the interpreter if Python called such a function, so internal
    kernels have private names and refuse calls from Python with a ``TypeError``;
    :func:`public` makes the twin that Python may call.
    """
    return _refuse_python_calls(njit(**JIT, **INTERNAL)(func))


def inlined(func):
    """An :func:`internal` kernel whose code Numba copies into each caller
    (``inline="always"``) instead of compiling it on its own.

    For the few kernels in the middle of the call tree. Numba optimizes a compiled
    function again inside every function that calls it, so a kernel deep in the
    tree is optimized once per level above it (numba/numba#9566); inlining the
    network's forward pass, the dense layer's choice of path, the loss switch and
    the step inside ``fit``'s epoch loop removes such levels. The small helpers that
    many kernels call are not inlined: each copy would be compiled anew.
    """
    return _refuse_python_calls(njit(**JIT, **INTERNAL, inline="always")(func))


def public(kernel):
    """The Python-callable twin of the :func:`internal` kernel ``kernel``.

    The same code, named without the leading underscore and compiled separately
    with its Python entry point (only when called; it has its own cache entries).
    Kernels call the internal one, so none of them carries the wrappers.
    """
    func = getattr(kernel, "py_func", kernel)  # plain function under NUMBA_DISABLE_JIT
    name = func.__name__.lstrip("_")
    twin = types.FunctionType(
        func.__code__, func.__globals__, name, func.__defaults__, func.__closure__
    )
    twin.__qualname__ = func.__qualname__[: -len(func.__name__)] + name
    twin.__doc__ = func.__doc__
    twin.__module__ = func.__module__
    return jit(twin)
