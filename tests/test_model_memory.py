"""Memory stays flat: the compiled training step allocates nothing whatever the
depth, and repeated model calls do not grow Python-visible memory."""

import gc
import textwrap
import tracemalloc

import numpy as np
import pytest

import fastnn

from conftest import run_with_allocation_stats

ALLOCATION_SCRIPT = textwrap.dedent(
    """
    import numpy as np
    from numba.core.runtime import rtsys

    import fastnn
    from fastnn.kernels import network as knet


    def count(call, repeat):
        before = rtsys.get_allocation_stats()
        for _ in range(repeat):
            call()
        after = rtsys.get_allocation_stats()
        assert after.alloc - before.alloc == after.free - before.free, "leak"
        return after.alloc - before.alloc


    per_call = {}
    for dtype in ("float32", "float64"):
        for depth in (2, 4, 8):
            sizes = [20] + [16] * (depth - 1) + [3]
            model = fastnn.MLP(
                sizes, hidden="tanh", loss="cross_entropy",
                optimizer=fastnn.Adam(lr=1e-3), dtype=dtype, seed=0,
            )
            opt = model.optimizer
            LOSS = fastnn.kernels.LOSSES["cross_entropy"]
            rng = np.random.default_rng(0)
            n = 32
            X = rng.standard_normal((n, 20)).astype(dtype)
            Y = np.eye(3, dtype=dtype)[rng.integers(0, 3, n)]
            weights = rng.random(n).astype(dtype)  # the weighted loss path
            kernel, args = model.step_arguments(X, Y, weights)

            def step():
                kernel(*args)

            step()  # compile
            one, twenty = count(step, 1), count(step, 20)
            # Each call costs only the unboxing of its array arguments.
            assert twenty == 20 * one, (dtype, depth, one, twenty)
            per_call[dtype, depth] = one

            # fit_epochs: 1 epoch and 10 epochs in one call allocate alike.
            batch_size = 8
            backup = np.empty_like(model.params)
            batch = np.empty(batch_size * (20 + 3 + 1), dtype)
            fit_work = model.workspace(batch_size)

            def fit(epochs):
                order = np.stack([rng.permutation(n) for _ in range(epochs)])
                losses = np.empty(epochs)

                def call():
                    status = knet.fit_epochs(
                        model.network, opt.kernel_state, (X, Y, weights),
                        (model.grads, fit_work, backup), LOSS, model.dropout_seed,
                        (order, batch_size, batch, False), losses,
                    )
                    assert status == -1, status

                return call

            fit(1)()  # compile
            one_epoch, ten_epochs = count(fit(1), 1), count(fit(10), 1)
            assert one_epoch == ten_epochs, (dtype, depth, one_epoch, ten_epochs)
            print("fit", dtype, depth, one_epoch)

    print("per call", per_call)
    counts = set(per_call.values())
    assert len(counts) == 1, per_call  # the same for every depth
    assert counts.pop() <= 13, per_call  # at most one record per array argument (13)
    print("flat")
    """
)


def test_train_step_kernel_allocation_does_not_depend_on_depth():
    assert "flat" in run_with_allocation_stats(ALLOCATION_SCRIPT)


LIMIT = 64 * 1024  # bytes of growth allowed over 200 calls


def traced_growth(call, repeat=200):
    """Growth of memory traced by ``tracemalloc`` over ``repeat`` calls of
    ``call``, after a warm-up."""
    for _ in range(5):
        call()
    gc.collect()
    tracemalloc.start()
    try:
        for _ in range(5):
            call()
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(repeat):
            call()
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return after - before


@pytest.fixture(params=[2, 6], ids=["depth2", "depth6"])
def model_and_data(request, dtype):
    depth = request.param
    sizes = [30] + [24] * (depth - 1) + [4]
    model = fastnn.MLP(
        sizes, hidden="relu", loss="cross_entropy", optimizer=fastnn.Adam(),
        dtype=dtype, seed=0,
    )  # fmt: skip
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 30)).astype(dtype)
    labels = rng.integers(0, 4, 64)
    return model, X, labels


def test_train_step_memory_is_flat(model_and_data):
    model, X, labels = model_and_data
    Y = np.eye(4, dtype=model.dtype)[labels]
    growth = traced_growth(lambda: model.train_step(X, Y))
    assert growth < LIMIT, growth


def test_train_step_with_labels_memory_is_flat(model_and_data):
    model, X, labels = model_and_data
    growth = traced_growth(lambda: model.train_step(X, labels))
    assert growth < LIMIT, growth


def test_predict_memory_is_flat(model_and_data):
    model, X, _ = model_and_data
    growth = traced_growth(lambda: model.predict(X))
    assert growth < LIMIT, growth


def test_loss_and_gradients_memory_is_flat(model_and_data):
    model, X, labels = model_and_data
    growth = traced_growth(lambda: (model.loss(X, labels), model.gradients(X, labels)))
    assert growth < LIMIT, growth


def test_workspaces_are_bounded(dtype):
    model = fastnn.MLP([10, 8, 2], dtype=dtype, seed=0)
    rng = np.random.default_rng(0)

    def many_batch_sizes():
        for n in range(1, 41):
            model.train_step(rng.standard_normal((n, 10)), rng.standard_normal((n, 2)))

    many_batch_sizes()
    growth = traced_growth(many_batch_sizes, repeat=5)
    assert growth < LIMIT, growth
    assert len(model._workspaces) <= 4
