"""The BLAS that the kernels call, held to one thread during fastnn's compiled calls.

The matmuls of the BLAS path run in the BLAS that Numba calls (SciPy's OpenBLAS in
the wheels), with as many threads as it has; on a machine whose cores are shared,
two threads were measured far *slower* than one on fastnn's training step (see
:data:`ONE_BLAS_THREAD`). :func:`blas_threads` holds that BLAS to one thread for the
duration of a compiled call, unless the user chose a count.
"""

import contextlib
import ctypes
import itertools
import os
import threading

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
