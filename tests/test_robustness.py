"""Robustness: unusual but valid input gives the same result as the plain float
array it stands for; memory stays flat over thousands of calls; training is bit for
bit reproducible, within a process and across processes.

Bad input is refused in ``test_bad_input.py`` and ``test_bad_arguments.py``,
damaged files in ``test_io_damaged.py``.
"""

import hashlib
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastnn

from _helpers import (
    BCE,
    CE,
    MSE,
    N_IN,
    N_OUT,
    ONE_HOT,
    N,
    X,
    Y,
    assert_same_state,
    put,
)
from conftest import TOL

# -- unusual but valid input: the same result as the float array it stands for -------

_big = np.random.default_rng(3).standard_normal((2 * N, 2 * N_IN))
_frozen = X.copy()
_frozen.flags.writeable = False
_probs = put(ONE_HOT, 0, [0.2, 0.3, 0.5])
_probs[1] = [0.5, 0.5, 0.0005]  # sums to 1.0005: within 1e-3

VALID = {
    "int X": (MSE, "float64", (X * 10).astype(np.int32), Y[MSE]),
    "bool X": (MSE, "float64", X > 0, Y[MSE]),
    "uint8 X": (MSE, "float64", (np.abs(X) * 50).astype(np.uint8), Y[MSE]),
    "float16 X": (MSE, "float32", X.astype(np.float16), Y[MSE]),
    "int Y": (MSE, "float64", X, (Y[MSE] * 3).astype(np.int64)),
    "lists": (MSE, "float64", X.tolist(), Y[MSE].tolist()),
    "Fortran order": (BCE, "float32", np.asfortranarray(X), np.asfortranarray(Y[BCE])),
    "non-contiguous": (MSE, "float64", _big[::2, ::2], Y[MSE]),
    "read-only": (MSE, "float64", _frozen, Y[MSE]),
    "broadcast rows": (MSE, "float64", np.broadcast_to(X[:1], X.shape), Y[MSE]),
    "float64 into float32": (CE, "float32", X, Y[CE]),
    "float32 into float64": (CE, "float64", X.astype(np.float32), Y[CE]),
    "float labels": (CE, "float64", X, Y[CE].astype(float)),
    "uint64 labels": (CE, "float64", X, Y[CE].astype(np.uint64)),
    "label list": (CE, "float64", X, Y[CE].tolist()),
    "probability rows": (CE, "float64", X, _probs),
}


def _plain(model, X_in, Y_in):
    """What the input stands for: a C-contiguous array of the model's dtype."""
    Xc = np.array(X_in, dtype=model.dtype)
    Yc = np.asarray(Y_in)
    if Yc.ndim == 1:
        Yc = np.eye(N_OUT)[Yc.astype(int)]
    return Xc, np.array(Yc, dtype=model.dtype)


@pytest.mark.parametrize(("loss", "dtype", "X_in", "Y_in"), VALID.values(), ids=VALID)
def test_unusual_valid_input_works(loss, dtype, X_in, Y_in):
    model = fastnn.MLP([N_IN, 5, N_OUT], loss=loss, dtype=dtype, seed=0)
    twin = fastnn.MLP([N_IN, 5, N_OUT], loss=loss, dtype=dtype, seed=0)
    Xc, Yc = _plain(model, X_in, Y_in)
    assert model.loss(X_in, Y_in) == twin.loss(Xc, Yc)
    assert model.train_step(X_in, Y_in) == twin.train_step(Xc, Yc)
    model.fit(X_in, Y_in, epochs=2, batch_size=4)
    twin.fit(Xc, Yc, epochs=2, batch_size=4)
    assert_same_state(model, twin)
    P = model.predict(X_in)
    assert P.dtype == np.dtype(dtype) and P.flags.c_contiguous
    np.testing.assert_array_equal(P, twin.predict(Xc))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_batch_of_one(dtype):
    model = fastnn.MLP([N_IN, 5, N_OUT], loss=CE, dtype=dtype, seed=0)
    P = model.predict(X)
    for i in range(N):
        np.testing.assert_allclose(
            model.predict(X[i : i + 1])[0], P[i], **TOL["row_in_batch"]
        )
    assert np.isfinite(model.train_step(X[:1], Y[CE][:1]))
    assert np.isfinite(model.train_step(X[0][None], [2]))
    history = model.fit(X[:1], Y[CE][:1], epochs=3)
    assert history.epochs == 3


def test_batch_size_above_the_data_size_is_one_batch():
    model, twin = (fastnn.MLP([N_IN, 5, N_OUT], loss=CE, seed=0) for _ in range(2))
    model.fit(X, Y[CE], epochs=3, batch_size=1000)
    twin.fit(X, Y[CE], epochs=3, batch_size=N)
    assert_same_state(model, twin)
    assert model.optimizer.step[0] == 3


# -- memory --------------------------------------------------------------------------


def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="Linux only")
def test_many_calls_do_not_grow_the_process():
    model = fastnn.MLP([20, 32, 4], loss=CE, optimizer="adam", seed=0)
    rng = np.random.default_rng(0)
    Xs = rng.standard_normal((16, 20)).astype(np.float32)
    ys = rng.integers(0, 4, 16)
    Ys = np.eye(4, dtype=np.float32)[ys]
    for _ in range(300):  # warm-up: compile, fill the allocator's free lists
        model.train_step(Xs, Ys)
        model.predict(Xs)
    before = _rss_bytes()
    for _ in range(2000):
        model.train_step(Xs, Ys)
        model.predict(Xs)
        model.train_step(Xs, ys)  # labels: a one-hot copy per call, freed again
    growth = _rss_bytes() - before
    assert growth < 1 << 20, f"RSS grew by {growth / 2**20:.2f} MiB"


# -- determinism ---------------------------------------------------------------------

DETERMINISM = textwrap.dedent(
    """
    import hashlib

    import numpy as np

    import fastnn


    def trained_hash():
        rng = np.random.default_rng(11)
        X = rng.standard_normal((200, 20)).astype(np.float32)
        y = rng.integers(0, 5, 200)
        model = fastnn.MLP([20, 64, 64, 5], loss="cross_entropy", dtype="float32",
                           optimizer=fastnn.Adam(lr=1e-2), seed=3, dropout=0.2,
                           batch_norm=True)
        model.fit(X, y, epochs=3, batch_size=16)
        opt = model.optimizer
        digest = hashlib.sha256()
        for array in (model.params, model.running_stats, opt.state, opt.step):
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()


    if __name__ == "__main__":
        print(trained_hash())
    """
)


@pytest.fixture(scope="module")
def one_blas_thread():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    with threadpoolctl.threadpool_limits(1, user_api="blas"):
        yield


def _determinism_namespace():
    namespace = {"__name__": "determinism"}
    exec(DETERMINISM, namespace)
    return namespace


def test_fit_is_bit_identical_for_a_seed(one_blas_thread):
    trained_hash = _determinism_namespace()["trained_hash"]
    assert trained_hash() == trained_hash()


def test_fit_is_bit_identical_across_processes(one_blas_thread, tmp_path):
    script = tmp_path / "determinism.py"
    script.write_text(DETERMINISM)
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    hashes = [
        subprocess.run(
            [sys.executable, str(script)], env=env, capture_output=True, text=True,
            check=True, timeout=600,
        ).stdout.strip()
        for _ in range(2)
    ]  # fmt: skip
    assert len(hashes[0]) == 64
    assert hashes[0] == hashes[1]
    assert hashes[0] == _determinism_namespace()["trained_hash"]()
    assert hashlib.sha256(b"").hexdigest() not in hashes
