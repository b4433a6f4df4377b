"""Data-parallel steps (``fastnn._shards``): large batches cut into fixed shards whose
gradients are summed in a fixed order, so that training gives the same bits at any
thread count.

Whether more threads are *faster* is a timing question: ``benchmarks/threads.py``.
"""

import hashlib
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastnn
from fastnn import _shards
from fastnn.kernels import LOSSES
from fastnn.kernels import layout as klayout
from fastnn.kernels import network as knet

from _helpers import assert_unchanged, reference_gradients, snapshot
from conftest import TOL, assert_close

N_ROWS = 1024  # two shards of 512 rows for SIZES
SIZES = [64, 256, 10]


def _model(dtype="float32", **kwargs):
    kwargs = {"loss": "cross_entropy", "seed": 0, **kwargs}
    return fastnn.MLP(SIZES, dtype=dtype, **kwargs)


def _data(dtype="float32", n=N_ROWS, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, SIZES[0])).astype(dtype)
    Y = np.eye(SIZES[-1], dtype=dtype)[rng.integers(0, SIZES[-1], n)]
    return X, Y


# -- the rule -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sizes", "batch"),
    [((2, 4, 1), 4), ((100, 100, 100), 4), ((784, 128, 10), 1), ((784, 128, 10), 64),
     ((24, 8, 2), 200), ((64, 128, 10), 64)],
)  # fmt: skip
def test_small_steps_are_not_sharded(sizes, batch):
    model = fastnn.MLP(list(sizes))
    assert _shards.n_shards(model.layout, batch) == 1
    assert model.shards(batch) is None


def test_the_shard_count_follows_its_rule():
    layout = fastnn.MLP([512, 512, 10]).layout
    counts = {n: _shards.n_shards(layout, n) for n in (255, 511, 512, 1024, 4096)}
    assert counts == {255: 1, 511: 1, 512: 2, 1024: 4, 4096: 8}
    macs = klayout.macs_per_row(layout)
    for n, count in counts.items():
        assert count & (count - 1) == 0 and count <= _shards.MAX_SHARDS
        if count > 1:
            assert n // count >= _shards.SHARD_MIN_ROWS
            assert n * macs // count >= _shards.SHARD_MIN_MACS


def test_batch_normalized_networks_are_not_sharded():
    model = fastnn.MLP([512, 512, 10], batch_norm=True)
    assert _shards.n_shards(model.layout, 4096) == 1


def test_shard_seeds_are_distinct_int64():
    seeds = [_shards.shard_seed(2**62 - 1, s) for s in range(_shards.MAX_SHARDS)]
    assert seeds[0] == 2**62 - 1
    assert len(set(seeds)) == len(seeds)
    assert all(0 <= s < 2**63 for s in seeds)


# -- what a sharded step computes -----------------------------------------------------


@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
def test_sharded_gradients_match_the_reference(dtype, loss):
    model = _model(dtype, loss=loss, hidden="tanh")
    X, Y = _data(dtype)
    assert model.shards(N_ROWS) is not None
    value, dW, db = model.gradients(X, Y)
    ref_value, ref_dW, ref_db = reference_gradients(model, X, Y)
    assert_close(value, ref_value, dtype)
    for layer in range(len(dW)):
        assert_close(dW[layer], ref_dW[layer], dtype, f"dW[{layer}]")
        assert_close(db[layer], ref_db[layer], dtype, f"db[{layer}]")
    assert model.loss(X, Y) == value


def test_sharded_step_is_the_weighted_sum_of_its_shards(dtype):
    """With dropout and sample weights: each shard is the whole-network kernel on its
    rows with its own dropout seed, and the batch's loss and gradient are their sums
    weighted by the shards' shares of the batch."""
    model = _model(dtype, dropout=0.3).train()
    X, Y = _data(dtype)
    raw = np.random.default_rng(2).random(N_ROWS) + 0.5
    w = model.check_sample_weight(raw, N_ROWS)  # what the model makes of them
    buffers = model.shards(N_ROWS)
    assert len(buffers.cuts) == 3
    value, dW, db = model.gradients(X, Y, sample_weight=raw)

    expected = np.zeros(model.n_params, np.float64)
    expected_value = 0.0
    guard = model.blas_guard(N_ROWS)  # BLAS on one thread, as in the model's calls
    for shard in range(len(buffers.cuts) - 1):
        rows = slice(buffers.cuts[shard], buffers.cuts[shard + 1])
        n = rows.stop - rows.start
        grads = np.empty(model.n_params, dtype)
        work = np.empty(klayout.workspace_size(model.layout, n), dtype)
        seed = _shards.shard_seed(model.dropout_seed, shard)
        with guard:
            shard_value = knet.train_step(
                model.network, model.optimizer.kernel_state,
                (X[rows], Y[rows], w[rows]), (grads, work, grads[:0]),
                LOSSES[model.loss_name], knet.TRAINING, seed,
            )  # fmt: skip
        expected += n / N_ROWS * grads.astype(np.float64)
        expected_value += n / N_ROWS * float(shard_value)
    got = np.concatenate(
        [np.concatenate([a.ravel(), b]) for a, b in zip(dW, db, strict=True)]
    )
    np.testing.assert_allclose(got, expected, **TOL["shard_sum"][np.dtype(dtype).type])
    assert value == pytest.approx(expected_value, rel=TOL["reordered"]["rtol"])
    # the dropout masks differ between shards: the twin of shard 1 with shard 0's
    # seed gives other gradients
    grads_other = np.empty(model.n_params, dtype)
    rows = slice(buffers.cuts[1], buffers.cuts[2])
    knet.train_step(
        model.network, model.optimizer.kernel_state, (X[rows], Y[rows], w[rows]),
        (grads_other, work, grads_other[:0]), LOSSES[model.loss_name], knet.TRAINING,
        model.dropout_seed,
    )  # fmt: skip
    assert not np.array_equal(grads_other, grads)


def test_a_diverging_sharded_step_changes_nothing():
    model = _model(loss="mse", optimizer=fastnn.SGD(lr=0.1, momentum=0.9))
    X, Y = _data()
    model.train_step(X, Y)  # a momentum buffer to keep
    saved, grads = snapshot(model), model.grads.copy()
    X[700] = 1e30  # finite input whose loss overflows, in the second shard only
    with pytest.raises(fastnn.DivergenceError):
        model.train_step(X, Y)
    assert_unchanged(model, saved)
    np.testing.assert_array_equal(model.grads, grads)


def test_sharded_fit_stops_at_the_last_finite_parameters():
    model = _model(loss="mse", optimizer=fastnn.SGD(lr=1e4))  # diverges in a few steps
    X, Y = _data(n=4 * N_ROWS)
    with pytest.raises(fastnn.DivergenceError) as caught:
        model.fit(X, Y, epochs=50, batch_size=N_ROWS)
    assert caught.value.history.epochs < 50
    assert np.isfinite(model.params).all()


def test_sharded_fit_equals_its_steps_by_hand(dtype):
    """fit's loop for sharded batches (in Python) against train_step on the same
    batches, the last one smaller and not sharded."""
    X, Y = _data(dtype, n=2 * N_ROWS + 300)
    fitted, by_hand = _model(dtype, dropout=0.2), _model(dtype, dropout=0.2)
    history = fitted.fit(X, Y, epochs=1, batch_size=N_ROWS, shuffle=False)
    losses = [
        by_hand.train_step(X[lo : lo + N_ROWS], Y[lo : lo + N_ROWS])
        * len(X[lo : lo + N_ROWS])
        for lo in range(0, len(X), N_ROWS)
    ]
    np.testing.assert_array_equal(fitted.params, by_hand.params)
    assert history.loss[0] == pytest.approx(sum(losses) / len(X), rel=1e-12)


_SUBPROCESS = textwrap.dedent(
    """
    import hashlib, sys
    import numpy as np
    import fastnn

    digest = hashlib.sha256()
    for dtype in ("float32", "float64"):
        rng = np.random.default_rng(0)
        X = rng.standard_normal((2 * 1024 + 300, 64)).astype(dtype)
        Y = np.eye(10, dtype=dtype)[rng.integers(0, 10, len(X))]
        for kwargs in ({"dropout": 0.2}, {"batch_norm": True, "dropout": 0.1}):
            model = fastnn.MLP([64, 256, 10], loss="cross_entropy", dtype=dtype,
                               seed=0, **kwargs)
            model.fit(X, Y, epochs=2, batch_size=1024)
            digest.update(model.params.tobytes())
            digest.update(model.predict(X).tobytes())
    print(fastnn.get_num_threads(), digest.hexdigest())
    """
)


def test_training_is_bit_identical_at_any_thread_count(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(_SUBPROCESS)
    results = []
    for threads in (1, 2, 3):
        env = {**os.environ, "NUMBA_NUM_THREADS": str(threads)}
        for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
            env.pop(name, None)  # BLAS held to one thread by fastnn's guard
        done = subprocess.run(
            [sys.executable, str(script)], env=env, capture_output=True, text=True,
            check=True, timeout=600,
        )  # fmt: skip
        results.append(done.stdout.split())
    counts = [int(r[0]) for r in results]
    assert counts == [
        1,
        min(2, len(os.sched_getaffinity(0))),
        min(3, len(os.sched_getaffinity(0))),
    ]
    digests = {r[1] for r in results}
    assert len(digests) == 1
    assert hashlib.sha256(b"").hexdigest() not in digests


def test_verbose_sharded_fit_reports_its_epochs(capsys):
    X, Y = _data(n=2 * N_ROWS)
    history = _model().fit(X, Y, epochs=2, batch_size=N_ROWS, verbose=2)
    out = capsys.readouterr()
    assert "epoch 2/2" in out.out
    assert "kernels compiled" not in out.err  # nothing fit_epochs-only was compiled
    assert history.epochs == 2
