"""Threads: predict is safe from many threads on one model, and training calls from
several threads take turns (the model's lock), so the result equals a serial order.

Whether two threads are *faster* than one is a timing question: see
``benchmarks/threads.py``, never a test.
"""

import hashlib
import pickle
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
import pytest
from numba.core.registry import CPUDispatcher

import fastnn
from fastnn.kernels import network as knet

N_THREADS = 8
CALLS = 60  # per thread


def _model(**kwargs):
    kwargs = {"loss": "cross_entropy", "seed": 0, **kwargs}
    return fastnn.MLP([64, 128, 10], **kwargs)


def _run_in_threads(n_threads, work):
    """Run ``work(i)`` in ``n_threads`` threads started together; return results."""
    barrier = threading.Barrier(n_threads)

    def start(i):
        barrier.wait()
        return work(i)

    with ThreadPoolExecutor(n_threads) as pool:
        return list(pool.map(start, range(n_threads)))


def test_every_kernel_releases_the_gil():
    import fastnn.kernels.network  # noqa: F401 - every kernel module is loaded

    kernels = [
        (name, attr)
        for name, module in sys.modules.items()
        if name.startswith("fastnn.kernels")
        for attr in vars(module).values()
        if isinstance(attr, CPUDispatcher)
    ]
    assert len(kernels) > 20
    for name, kernel in kernels:
        assert kernel.targetoptions["nogil"], f"{name}.{kernel.__name__}"


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_predict_from_many_threads_equals_serial(dtype):
    model = _model(dtype=dtype, batch_norm=True, dropout=0.1)
    model.fit(*_data(300), epochs=1)  # non-trivial running statistics
    rng = np.random.default_rng(1)
    # batch sizes on both sides of the BLAS switch, of predict's 512-row blocks and
    # of its parallel threshold (fastnn's threads share out the blocks of the last two)
    sizes = [1, 3, 17, 64, 600, 2, 33, 1030, 2100]
    inputs = [rng.standard_normal((n, 64)).astype(dtype) for n in sizes]
    with fastnn.threads(1):
        serial = [model.predict(X) for X in inputs]
    params = model.params.copy()

    def work(i):
        mismatches = 0
        for call in range(CALLS):
            k = (i + call) % len(inputs)
            mismatches += not np.array_equal(model.predict(inputs[k]), serial[k])
        return mismatches

    with fastnn.threads(min(2, int(numba.config.NUMBA_NUM_THREADS))):
        assert _run_in_threads(N_THREADS, work) == [0] * N_THREADS
    np.testing.assert_array_equal(model.params, params)


def _data(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 64)), rng.integers(0, 10, n)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_train_step_from_two_threads_equals_serial_steps(optimizer):
    """Identical batches: any serial order of the 2k steps gives the same result,
    so a step that interleaved with another would show."""
    k = 100
    X, y = _data(32)
    threaded = _model(optimizer=optimizer, dropout=0.2, batch_norm=True)
    serial = _model(optimizer=optimizer, dropout=0.2, batch_norm=True)

    def work(_):
        return [threaded.train_step(X, y) for _ in range(k)]

    losses = _run_in_threads(2, work)
    serial_losses = [serial.train_step(X, y) for _ in range(2 * k)]
    assert threaded.optimizer.step[0] == 2 * k
    np.testing.assert_array_equal(threaded.params, serial.params)
    np.testing.assert_array_equal(threaded.optimizer.state, serial.optimizer.state)
    np.testing.assert_array_equal(threaded.running_stats, serial.running_stats)
    assert sorted(losses[0] + losses[1]) == sorted(serial_losses)


def test_fit_and_train_step_from_two_threads_take_turns():
    """fit over exactly one batch, unshuffled, takes the same steps as train_step."""
    k = 60
    X, y = _data(32)
    threaded, serial = _model(optimizer="adam"), _model(optimizer="adam")

    def work(i):
        if i == 0:
            threaded.fit(X, y, epochs=k, batch_size=32, shuffle=False)
        else:
            for _ in range(k):
                threaded.train_step(X, y)

    _run_in_threads(2, work)
    for _ in range(2 * k):
        serial.train_step(X, y)
    assert threaded.optimizer.step[0] == 2 * k
    np.testing.assert_array_equal(threaded.params, serial.params)
    np.testing.assert_array_equal(threaded.optimizer.state, serial.optimizer.state)


def test_loss_and_gradients_alongside_training_stay_consistent():
    """loss and gradients take the lock too: each sees the parameters between two
    steps, so its value is one of the losses the serial run passes through."""
    X, y = _data(32)
    threaded, serial = _model(optimizer="sgd"), _model(optimizer="sgd")
    threaded.eval()
    serial.eval()
    possible = {serial.loss(X, y)}
    for _ in range(40):
        serial.train_step(X, y)
        possible.add(serial.loss(X, y))

    def work(i):
        if i == 0:
            for _ in range(40):
                threaded.train_step(X, y)
            return set()
        seen = set()
        for _ in range(40):
            seen.add(threaded.loss(X, y))
            seen.add(threaded.gradients(X, y)[0])
        return seen

    results = _run_in_threads(3, work)
    assert results[1] | results[2] <= possible
    np.testing.assert_array_equal(threaded.params, serial.params)


def _fingerprint(model):
    opt = model.optimizer
    parts = (model.params, model.running_stats, opt.state, opt.step)
    return hashlib.blake2b(b"".join(p.tobytes() for p in parts)).digest()


def test_pickling_while_another_thread_trains_gives_a_consistent_model():
    """A pickle taken while another thread trains holds the parameters and optimizer
    state of one step, never a mix of two (the step runs without the GIL)."""
    model = fastnn.MLP([256, 256, 10], loss="cross_entropy", seed=0)
    X, y = _data(64)
    X = np.tile(X, 4)  # 256 features
    after = {0: _fingerprint(model)}  # step count -> the model after that step
    done = threading.Event()

    def train():
        for _ in range(150):
            model.train_step(X, y)
            after[int(model.optimizer.step[0])] = _fingerprint(model)
        done.set()

    trainer = threading.Thread(target=train)
    trainer.start()
    checked = 0
    try:
        while not done.is_set() or checked < 20:
            copy = pickle.loads(pickle.dumps(model))
            step = int(copy.optimizer.step[0])
            deadline = time.monotonic() + 30.0
            while step not in after:  # the trainer records it right after the step
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"the trainer did not record step {step} within 30 s "
                        f"(trainer alive: {trainer.is_alive()})"
                    )
                time.sleep(0)
            assert _fingerprint(copy) == after[step], f"torn at step {step}"
            checked += 1
    finally:
        trainer.join()
    assert checked >= 20


# -- BLAS threads: one inside fastnn's big calls, the user's count outside -----------


@pytest.fixture
def blas_counts(monkeypatch):
    """A function giving the thread counts of the BLAS that Numba calls, set to two
    for the test as if that were the default (other tests may have limited it)."""
    from fastnn.kernels import blas

    pytest.importorskip("threadpoolctl")
    for name in blas._THREAD_VARIABLES:  # as when the user set none
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(blas._ONE_THREAD, "_libs", None)  # found again, here
    libs = blas._OneBlasThread()._find_libs()
    if not libs:
        pytest.skip("no OpenBLAS with its own thread pool here")
    before = [get() for get, _ in libs]
    for _, put in libs:
        put(2)

    def counts():
        return [get() for get, _ in libs]

    yield counts
    assert counts() == [2] * len(libs)  # restored
    for (_, put), count in zip(libs, before, strict=True):
        put(count)


def _spy(monkeypatch, name, counts, seen, fail=False):
    kernel = getattr(knet, name)

    def spy(*args):
        seen.append(counts())
        if fail:
            raise RuntimeError("boom")
        return kernel(*args)

    monkeypatch.setattr(knet, name, spy)


BIG = 64, 256  # 64 * 256 * 256 multiply-adds: OpenBLAS would use its threads


def test_big_calls_run_blas_on_one_thread(blas_counts, monkeypatch):
    model = fastnn.MLP([256, 256, 10], loss="cross_entropy", seed=0)
    X, y = np.ones(BIG), np.zeros(BIG[0], int)
    seen = []
    for name in ("train_step", "network_loss", "predict_blocks", "fit_epochs"):
        _spy(monkeypatch, name, blas_counts, seen)
    model.train_step(X, y)
    model.loss(X, y)
    model.gradients(X, y)
    model.predict(X)
    model.fit(X, y, epochs=1, batch_size=64, validation_data=(X, y))
    # four direct calls, then fit's chunk and its validation (one predict_blocks)
    assert len(seen) == 6
    assert all(max(counts) == 1 for counts in seen), seen


def test_small_calls_and_opting_out_leave_blas_alone(blas_counts, monkeypatch):
    from fastnn.kernels import blas

    before = blas_counts()
    seen = []
    _spy(monkeypatch, "train_step", blas_counts, seen)
    small = fastnn.MLP([16, 16, 2], loss="cross_entropy", seed=0)
    small.train_step(np.ones((8, 16)), np.zeros(8, int))  # 2048 MACs: never threaded
    monkeypatch.setattr(blas, "ONE_BLAS_THREAD", False)
    big = fastnn.MLP([256, 256, 10], loss="cross_entropy", seed=0)
    big.train_step(np.ones(BIG), np.zeros(BIG[0], int))
    assert seen == [before, before]


def test_blas_threads_restored_after_errors_and_from_threads(blas_counts, monkeypatch):
    model = fastnn.MLP([256, 256, 10], loss="cross_entropy", seed=0)
    X = np.ones(BIG)
    seen = []
    _spy(monkeypatch, "train_step", blas_counts, seen, fail=True)
    with pytest.raises(RuntimeError, match="boom"):
        model.train_step(X, np.zeros(BIG[0], int))
    assert min(blas_counts()) >= 2 and max(seen[0]) == 1

    seen.clear()
    _spy(monkeypatch, "predict_blocks", blas_counts, seen)
    _run_in_threads(N_THREADS, lambda i: [model.predict(X) for _ in range(20)])
    assert len(seen) == 20 * N_THREADS
    assert all(max(counts) == 1 for counts in seen), seen
