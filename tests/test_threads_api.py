"""fastnn's thread count (``set_num_threads``, ``get_num_threads``, ``threads``) and
the calls that use it: predict and explanations by row blocks, in parallel, with the
bits of one thread.

Whether more threads are *faster* is a timing question: ``benchmarks/threads.py``.
"""

import multiprocessing
import os
import re
import subprocess
import sys
import textwrap
import threading
import time

import numba
import numpy as np
import pytest

import fastnn
import fastnn._compiled as compiled
from fastnn import _threads

MAX = int(numba.config.NUMBA_NUM_THREADS)
needs_two = pytest.mark.skipif(MAX < 2, reason="Numba allows one thread here")


@pytest.fixture(autouse=True)
def _default_threads():
    fastnn.set_num_threads(None)
    yield
    fastnn.set_num_threads(None)


def _model(dtype="float32"):
    return fastnn.MLP([64, 128, 10], loss="cross_entropy", dtype=dtype, seed=0)


def _X(n, dtype="float32", seed=1):
    return np.random.default_rng(seed).standard_normal((n, 64)).astype(dtype)


def _run(code, **env):
    """Run ``code`` in a fresh interpreter; returns what it printed."""
    environ = {**os.environ, **env}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=environ,
        capture_output=True, text=True, check=True, timeout=300,
    )  # fmt: skip
    return done.stdout.strip()


# -- the setting -----------------------------------------------------------------------


@pytest.mark.parametrize("bad", [0, -1, MAX + 1, 1.5, "2", True, np.float64(2.0)])
def test_bad_thread_counts_are_refused(bad):
    fastnn.set_num_threads(1)
    with pytest.raises(ValueError, match=re.escape(repr(bad))):
        fastnn.set_num_threads(bad)
    with pytest.raises(ValueError), fastnn.threads(bad):
        pass
    assert fastnn.get_num_threads() == 1  # unchanged


def test_numpy_integers_are_counts():
    fastnn.set_num_threads(np.int64(1))
    assert fastnn.get_num_threads() == 1
    assert type(fastnn.get_num_threads()) is int


def test_the_default_is_within_the_cpus_and_numbas_pool():
    default = fastnn.get_num_threads()
    assert 1 <= default <= min(MAX, len(os.sched_getaffinity(0)))


@needs_two
def test_threads_restores_the_previous_setting():
    fastnn.set_num_threads(2)
    with pytest.raises(RuntimeError), fastnn.threads(1):
        assert fastnn.get_num_threads() == 1
        with fastnn.threads(2):
            assert fastnn.get_num_threads() == 2
        assert fastnn.get_num_threads() == 1
        raise RuntimeError
    assert fastnn.get_num_threads() == 2
    with fastnn.threads(None):
        assert fastnn.get_num_threads() == min(MAX, len(os.sched_getaffinity(0)))
    assert fastnn.get_num_threads() == 2


def test_numbas_settings_are_honoured():
    code = """
        import os, numba, fastnn
        print(fastnn.get_num_threads(), end=" ")
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:1])
        print(fastnn.get_num_threads(), end=" ")
    """
    assert _run(code, NUMBA_NUM_THREADS="1") == "1 1"
    if len(os.sched_getaffinity(0)) >= 2:
        assert _run(code, NUMBA_NUM_THREADS="2") == "2 1"  # the affinity holds it
        code = """
            import numba, fastnn
            numba.set_num_threads(1)
            print(fastnn.get_num_threads())
        """
        assert _run(code, NUMBA_NUM_THREADS="2") == "1"


def test_numbas_threading_layer_is_never_started():
    code = """
        import numpy as np, fastnn
        from numba.np.ufunc import parallel
        model = fastnn.MLP([64, 256, 10], loss="cross_entropy", seed=0)
        X = np.random.default_rng(0).standard_normal((2048, 64)).astype("float32")
        Y = np.eye(10, dtype="float32")[np.arange(2048) % 10]
        model.fit(X, Y, epochs=1, batch_size=1024)
        model.predict(X)
        fastnn.explain.input_gradients(model, X)
        print(fastnn.get_num_threads(), parallel._is_initialized)
    """
    assert _run(code, NUMBA_NUM_THREADS="2").split()[1] == "False"


# -- the pool --------------------------------------------------------------------------


def test_map_items_waits_for_every_item_before_raising():
    started, finished = threading.Event(), []

    def item(i):
        if i == 0:
            started.wait(10)  # until item 1 runs on the other thread
            raise KeyError("first")
        started.set()
        time.sleep(0.05)
        finished.append(i)

    with pytest.raises(KeyError, match="first"):
        _threads.map_items(item, 2, 2)
    assert finished == [1]


@pytest.mark.parametrize(("n", "k"), [(0, 2), (1, 4), (4, 1), (5, 2), (7, 3), (8, 8)])
def test_map_items_calls_each_item_once_in_order(n, k):
    seen = []

    def square(i):
        seen.append(i)
        return i * i

    assert _threads.map_items(square, n, k) == [i * i for i in range(n)]
    assert sorted(seen) == list(range(n))


def test_map_items_raises_what_an_item_raised():
    def item(i):
        if i == 3:
            raise KeyError(i)
        return i

    with pytest.raises(KeyError):
        _threads.map_items(item, 8, 2)


# -- calls on several threads ----------------------------------------------------------


@needs_two
def test_predict_and_explanations_give_the_same_bits_at_any_thread_count(
    dtype, monkeypatch
):
    model = _model(dtype)
    X = _X(2000, dtype)  # four blocks of predict, eight of the explanations
    calls = []

    def spy(fn, n_items, n_threads):
        calls.append((n_items, n_threads))
        return _threads.map_items(fn, n_items, n_threads)

    monkeypatch.setattr(compiled, "map_items", spy)
    results = {}
    for n in (1, 2):
        with fastnn.threads(n):
            results[n] = (
                model.predict(X),
                fastnn.explain.input_gradients(model, X),
                fastnn.explain.integrated_gradients(model, X, steps=4),
            )
    # only the calls at two threads went to the pool: predict's 512-row blocks,
    # then the explanations' 256-row blocks
    assert calls == [(4, 2), (8, 2), (8, 2)]
    for one, two in zip(results[1], results[2], strict=True):
        np.testing.assert_array_equal(one, two)


@needs_two
def test_a_bad_value_in_a_later_block_is_reported_where_it_is():
    X = _X(2000)
    X[1500, 7] = np.nan
    with fastnn.threads(2), pytest.raises(ValueError, match=r"\(1500, 7\)"):
        _model().predict(X)


def _predict_in_child(queue):
    model = _model()
    with fastnn.threads(2):
        queue.put(model.predict(_X(2000)).sum())


@needs_two
@pytest.mark.skipif(
    "fork" not in multiprocessing.get_all_start_methods(), reason="no fork here"
)
def test_a_forked_child_predicts_on_its_own_pool():
    model = _model()
    with fastnn.threads(2):
        expected = model.predict(_X(2000)).sum()  # the parent's pool has started
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_predict_in_child, args=(queue,))
    child.start()
    got = queue.get(timeout=120)
    child.join(timeout=120)
    assert child.exitcode == 0
    assert got == expected
