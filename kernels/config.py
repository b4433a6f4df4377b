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

BLAS threads: the matmuls of the BLAS path run in the BLAS that Numba calls (SciPy's
OpenBLAS in the wheels), with as many threads as it has; on a machine whose cores
are shared, two threads were measured up to 40x *slower* than one on fastnn's
training step (see :data:`ONE_BLAS_THREAD`). :func:`blas_threads` holds that BLAS to
one thread for the duration of a compiled call, unless the user chose a count.
"""

import contextlib
import ctypes
import itertools
import os
import threading
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
    kernel. A kernel that only compiled code calls needs neither: leaving them out
    of the ~35 helpers under a training step took its cold compile from 14.0 s to
    11.5 s on the team VM. Numba would crash the interpreter if Python called such a
    function, so internal kernels have private names and refuse calls from Python
    with a ``TypeError``; :func:`public` makes the twin that Python may call.
    """
    return _refuse_python_calls(njit(**JIT, **INTERNAL)(func))


def inlined(func):
    """An :func:`internal` kernel whose code Numba copies into each caller
    (``inline="always"``) instead of compiling it on its own.

    For the few kernels in the middle of the call tree. Numba optimizes a compiled
    function again inside every function that calls it, so a kernel deep in the
    tree is optimized once per level above it (numba/numba#9566). Inlining the
    network's forward pass, the dense layer's choice of path and the loss switch
    removes four such levels: the cold first training step went from 10.0 to 8.5 s
    (CPU seconds, the median of four on the team VM); inlining the step into
    ``fit``'s epoch loop took the cold first ``fit`` from 11.3 to 9.8 s. Inlining
    the small helpers that many kernels call made it slower (12 s), as each copy
    is compiled anew.
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


# -- BLAS threads ------------------------------------------------------------------

#: Hold the BLAS that Numba calls to one thread during fastnn's compiled calls
#: (:func:`blas_threads`). ``python benchmarks/threads.py --blas`` on the team VM
#: (2 vCPUs that do 1.2x the work of one, shared), median µs per ``train_step``,
#: one BLAS thread vs the default two, without this guard:
#:
#:     mnist64  (64x784x128)    float32   758 / 30019    float64  1362 / 33286
#:     wide1024 (1024x512x512)  float32 25744 / 68916    float64 54411 / 71251
#:
#: and with it, the default within 3% of one thread in every case (xor, tiny100 and
#: online1 never reach OpenBLAS's threaded path). Set to False to let BLAS use its
#: own thread count.
ONE_BLAS_THREAD = True

#: OpenBLAS runs a matmul of at most this many multiply-adds on one thread anyway
#: (``SMP_THRESHOLD_MIN * GEMM_MULTITHREAD_THRESHOLD``); smaller calls skip the guard.
BLAS_THREADED_MACS = 65536 * 4

_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS",
                     "MKL_NUM_THREADS", "BLIS_NUM_THREADS")  # fmt: skip


class _OneBlasThread:
    """Context manager: BLAS on one thread while any thread is inside it.

    Reentrant and shared by all threads: the first to enter sets one thread, the
    last to leave restores the count it found. When the user set a count in the
    environment (``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS``, ...) it does
    nothing; a count set at run time (``threadpoolctl``) is overridden inside
    fastnn's calls, like the default (set :data:`ONE_BLAS_THREAD` to False to keep
    it). Acts on OpenBLAS with its own (pthreads) thread pool, the one SciPy's wheels
    ship, which threadpoolctl finds; with another BLAS, or without threadpoolctl,
    it does nothing. It calls OpenBLAS directly: threadpoolctl lets only one
    Python thread change an OpenBLAS pool, and any of the user's may call fastnn.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._depth = 0
        self._libs = None  # [(get, set)] of each OpenBLAS, found at first use
        self._changed = []  # [(set, count to restore)]

    def _find_libs(self):
        if any(os.environ.get(name) for name in _THREAD_VARIABLES):
            return []  # the user chose
        try:
            import scipy
            import scipy.linalg.cython_blas  # noqa: F401 - what Numba calls; loads it
            from threadpoolctl import ThreadpoolController
        except ImportError:
            return []
        found = ThreadpoolController().select(internal_api="openblas").lib_controllers
        pools = [lib for lib in found if lib.threading_layer == "pthreads"]
        # SciPy's own copy (site-packages/scipy.libs, scipy/.dylibs, ...) when there
        # is one: NumPy's BLAS is not the one Numba calls
        prefix = os.path.join(os.path.dirname(os.path.dirname(scipy.__file__)), "scipy")
        ours = [
            lib for lib in pools if os.path.abspath(lib.filepath).startswith(prefix)
        ]
        libs = []
        for lib in ours or pools:
            dll = ctypes.CDLL(lib.filepath)
            for pre, post in itertools.product(("", "scipy_"), ("", "64_", "_64")):
                get = getattr(dll, f"{pre}openblas_get_num_threads{post}", None)
                put = getattr(dll, f"{pre}openblas_set_num_threads{post}", None)
                if get is not None and put is not None:
                    libs.append((get, put))
                    break
        return libs

    def __enter__(self):
        with self._lock:
            if self._depth == 0:
                if self._libs is None:
                    self._libs = self._find_libs()
                for get, put in self._libs:
                    current = get()
                    if current != 1:
                        put(1)
                        self._changed.append((put, current))
            self._depth += 1
        return self

    def __exit__(self, *exc_info):
        with self._lock:
            self._depth -= 1
            if self._depth == 0:
                for put, count in self._changed:
                    put(count)
                self._changed.clear()

    def _after_fork(self):
        """In a forked child, which has none of the parent's other threads: a fresh
        lock, and BLAS as it was before any of them held it at one thread."""
        self._lock = threading.Lock()
        self._depth = 0
        for put, count in self._changed:
            put(count)
        self._changed.clear()


_ONE_THREAD = _OneBlasThread()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_ONE_THREAD._after_fork)
_NO_GUARD = contextlib.nullcontext()


def blas_threads(macs):
    """The context to run a compiled call in whose largest matmul has ``macs``
    multiply-adds: :class:`_OneBlasThread` when BLAS would use threads for it and
    :data:`ONE_BLAS_THREAD` is set, else a no-op."""
    if macs > BLAS_THREADED_MACS and ONE_BLAS_THREAD:
        return _ONE_THREAD
    return _NO_GUARD
