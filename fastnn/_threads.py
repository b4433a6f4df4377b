"""How many threads fastnn's calls use, and the pool that runs their row blocks.

The kernels release the GIL (``nogil=True``), so a call cut into independent pieces
(blocks of rows, shards of a batch) runs them on several Python threads at once: the
calling thread and a pool of daemon threads each take the next piece whenever they
are free (:func:`map_items`). The pieces, and so the bits of the results, do not
depend on the thread count; only which thread computes a piece does. Numba's own
threading layer is never started (no ``parallel=True`` kernel is compiled), so
nothing here depends on which layer is installed, and forked children (Dask,
multiprocessing) start with a pool of their own.

The count is, in order: what :func:`set_num_threads` or :func:`threads` set; else
Numba's count (``NUMBA_NUM_THREADS``, or ``numba.set_num_threads`` where Numba's
threading layer has started), held to the CPUs this process may run on.
"""

import contextlib
import itertools
import numbers
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numba

__all__ = ["get_num_threads", "set_num_threads", "threads"]

_chosen: int | None = None  # set_num_threads's value; None: the default
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _max_threads() -> int:
    """The most threads a call may use: the size of Numba's thread pool."""
    return int(numba.config.NUMBA_NUM_THREADS)  # type: ignore[attr-defined]


def _cpus() -> int:
    """The CPUs this process may run on (its affinity where the OS tells it)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def _numba_threads() -> int:
    """Numba's thread count for the calling thread. ``numba.get_num_threads`` would
    start Numba's threading layer, which a forked child cannot always survive (GNU
    OpenMP), so it is asked only where something already started the layer."""
    from numba.np.ufunc import parallel

    if getattr(parallel, "_is_initialized", False):
        return int(numba.get_num_threads())
    return _max_threads()


def get_num_threads() -> int:
    """The number of threads fastnn's calls use.

    What :func:`set_num_threads` set, if anything; otherwise Numba's count
    (``NUMBA_NUM_THREADS``, or ``numba.set_num_threads``) held to the CPUs this
    process may run on (its CPU affinity, not the machine's count).
    """
    if _chosen is not None:
        return _chosen
    return max(1, min(_numba_threads(), _cpus()))


def _check_count(n: Any) -> int:
    limit = _max_threads()
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise ValueError(f"the number of threads must be an integer, got {n!r}")
    if not 1 <= int(n) <= limit:
        raise ValueError(
            f"the number of threads must be between 1 and {limit} (Numba's "
            f"NUMBA_NUM_THREADS), got {n!r}"
        )
    return int(n)


def set_num_threads(n: int | None) -> None:
    """Set the number of threads fastnn's calls use, for the whole process.

    Parameters
    ----------
    n : int or None
        From 1 to Numba's ``NUMBA_NUM_THREADS`` (the machine's cores unless set);
        ``None`` returns to the default (see :func:`get_num_threads`).

    Raises
    ------
    ValueError
        If ``n`` is not an integer in that range; the setting is then unchanged.
    """
    global _chosen
    _chosen = None if n is None else _check_count(n)


@contextlib.contextmanager
def threads(n: int | None) -> Iterator[None]:
    """Context manager: fastnn's calls use ``n`` threads inside the block, in the
    manner of threadpoolctl. The setting is process-wide (as
    :func:`set_num_threads`'s), and the previous one comes back on exit.

    >>> import fastnn
    >>> with fastnn.threads(1):
    ...     fastnn.get_num_threads()
    1
    """
    global _chosen
    previous = _chosen
    set_num_threads(n)
    try:
        yield
    finally:
        _chosen = previous


def _get_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(
                max(1, _max_threads() - 1), thread_name_prefix="fastnn"
            )
        return _pool


def _after_fork() -> None:
    """A forked child has none of the parent's pool threads: start its own."""
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def map_items(fn: Callable[[int], Any], n_items: int, n_threads: int) -> list:
    """``[fn(i) for i in range(n_items)]`` on up to ``n_threads`` threads: the
    calling thread and the pool's each take the next item whenever they are free,
    so that a thread that starts late or runs slow (a core shared with other work)
    takes fewer items. Which thread runs an item does not change what ``fn``
    computes.

    Every call of ``fn`` has finished when this returns, also when one raised: the
    first exception is then raised again (the items write into shared outputs,
    which must not be written after the call has returned).
    """
    results: list = [None] * n_items
    counter = itertools.count()  # next() on it is atomic under the GIL

    def work():
        for i in iter(counter.__next__, None):
            if i >= n_items:
                return
            results[i] = fn(i)

    helpers = min(n_threads, n_items) - 1
    if helpers <= 0:
        work()
        return results
    pool = _get_pool()
    futures = [pool.submit(work) for _ in range(helpers)]
    try:
        work()
    finally:
        # every item is taken: a helper still queued behind other calls' work
        # (the pool is shared) would find nothing to do, so it need not start
        for future in futures:
            future.cancel()
        _wait_all(futures)
    for future in futures:
        error = None if future.cancelled() else future.exception()
        if error is not None:
            raise error
    return results


def _wait_all(futures):
    """Wait until every future is done, even through Ctrl-C (raised afterwards)."""
    interrupted = None
    for future in futures:
        while not future.cancelled():
            try:
                future.exception()
                break
            except KeyboardInterrupt as error:
                interrupted = error
    if interrupted is not None:
        raise interrupted
