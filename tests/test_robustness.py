"""Robustness: bad input is refused with a ``ValueError`` or ``TypeError`` whose
message names the problem and the offending value or shape, and leaves the model
exactly as a twin built with the same seed; unusual but valid input gives the same
result as the plain float array it stands for; memory stays flat over thousands of
calls; training is bit for bit reproducible, within a process and across processes.

This extends the bad-input tables of ``test_model.py`` (predict, loss, gradients and
train_step on bad X and Y; constructor and optimizer arguments), ``test_io.py``
(damaged files), ``test_fit.py``, ``test_weighting.py`` and
``test_regularization.py`` to ``fit``, validation data, sample weights, more names,
numbers and files, and checks the whole state of the model after each failure.
"""

import hashlib
import json
import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastnn
from fastnn.io import load, save

N, N_IN, N_OUT = 6, 4, 3
_rng = np.random.default_rng(7)
X = _rng.standard_normal((N, N_IN))
Y = {
    "mse": _rng.standard_normal((N, N_OUT)),
    "bce": _rng.random((N, N_OUT)),
    "cross_entropy": np.array([0, 1, 2, 0, 1, 2]),
}
ONE_HOT = np.eye(N_OUT)[Y["cross_entropy"]]
NAN, INF = float("nan"), float("inf")


def build(loss="cross_entropy", optimizer=None, dtype="float64"):
    """A model with batch normalization and dropout, two Adam steps in, so that
    every part of its state (parameters, moments, step count, running statistics,
    shuffling RNG) is non-trivial."""
    model = fastnn.MLP(
        [N_IN, 5, N_OUT], hidden="tanh", loss=loss, dtype=dtype, seed=0,
        optimizer=optimizer or fastnn.Adam(lr=0.01), dropout=0.2, batch_norm=True,
    )  # fmt: skip
    for _ in range(2):
        model.train_step(X, Y[loss])
    return model


def assert_same_state(model, twin):
    """Everything a call may change, compared bit for bit."""
    np.testing.assert_array_equal(model.params, twin.params)
    np.testing.assert_array_equal(model.optimizer.state, twin.optimizer.state)
    np.testing.assert_array_equal(model.optimizer.step, twin.optimizer.step)
    np.testing.assert_array_equal(model.optimizer.hyper, twin.optimizer.hyper)
    np.testing.assert_array_equal(model.running_stats, twin.running_stats)
    assert model.rng.bit_generator.state == twin.rng.bit_generator.state
    assert model.training == twin.training


def put(array, index, value, dtype=float):
    array = np.array(array, dtype=dtype)
    array[index] = value
    return array


def fit(*args, **kwargs):
    return lambda m: m.fit(*args, **kwargs)


# -- bad calls: (loss, call, exception, message) -------------------------------------

MSE, BCE, CE = "mse", "bce", "cross_entropy"
BAD_CALLS = {
    # shapes
    "X 1-D": (MSE, fit(X[0], Y[MSE]), ValueError, r"X must be 2-D, got .* \(4,\)"),
    "X 3-D": (MSE, fit(X[None], Y[MSE]), ValueError, r"shape \(1, 6, 4\)"),
    "X 0-D": (MSE, lambda m: m.predict(5.0), ValueError, r"2-D, .* shape \(\)$"),
    "rows differ": (
        MSE,
        fit(X, Y[MSE][:5]),
        ValueError,
        r"X has 6 rows but Y has 5 \(shapes \(6, 4\) and \(5, 3\)\)",
    ),  # fmt: skip
    "labels rows differ": (CE, fit(X[:4], Y[CE]), ValueError, "4 rows but Y has 6"),
    "features": (
        MSE,
        fit(X[:, :3], Y[MSE]),
        ValueError,
        r"X has 3 features but the model takes 4 \(shape \(6, 3\)\)",
    ),  # fmt: skip
    "outputs": (
        MSE,
        fit(X, Y[MSE][:, :2]),
        ValueError,
        r"Y has 2 columns but the model has 3 outputs \(shape \(6, 2\)\)",
    ),  # fmt: skip
    "one-hot outputs": (CE, fit(X, np.eye(4)[Y[CE]]), ValueError, "Y has 4 columns"),
    # NaN and inf
    "NaN in X": (
        MSE,
        fit(put(X, (3, 2), NAN), Y[MSE]),
        ValueError,
        r"X contains NaN or inf \(first at index \(3, 2\)\)",
    ),  # fmt: skip
    "inf in Y": (
        MSE,
        fit(X, put(Y[MSE], (1, 0), INF)),
        ValueError,
        r"Y contains NaN or inf \(first at index \(1, 0\)\)",
    ),  # fmt: skip
    "-inf in bce Y": (BCE, fit(X, put(Y[BCE], (5, 2), -INF)), ValueError, r"\(5, 2\)"),
    "NaN in predict list": (
        MSE,
        lambda m: m.predict([[0, 1, NAN, 3]]),
        ValueError,
        r"index \(0, 2\)",
    ),  # fmt: skip
    "inf in float32 predict": (
        MSE,
        lambda m: m.predict(put(X, (4, 0), INF, np.float32)),
        ValueError,
        r"NaN or inf \(first at index \(4, 0\)\)",
    ),  # fmt: skip
    # empty
    "no rows": (
        MSE,
        fit(X[:0], Y[MSE][:0]),
        ValueError,
        r"X is empty \(shape \(0, 4\)",
    ),
    "no features": (MSE, fit(X[:, :0], Y[MSE]), ValueError, r"empty \(shape \(6, 0\)"),
    "no labels": (CE, lambda m: m.loss(X, Y[CE][:0]), ValueError, "Y is empty"),
    # kinds of data
    "object X": (MSE, fit(X.astype(object), Y[MSE]), TypeError, "got dtype object"),
    "string X": (MSE, fit(X.astype(str), Y[MSE]), TypeError, "got dtype <U"),
    "bytes X": (MSE, lambda m: m.predict(X.astype("S8")), TypeError, r"dtype \|S8"),
    "datetime X": (MSE, fit(X.astype("M8[s]"), Y[MSE]), TypeError, "datetime64"),
    "complex Y": (MSE, fit(X, Y[MSE] + 0j), TypeError, "Y must hold real.*complex128"),
    "object labels": (CE, fit(X, Y[CE].astype(object)), TypeError, "dtype object"),
    # class labels
    "label too large": (
        CE,
        fit(X, put(Y[CE], 5, 3, int)),
        ValueError,
        r"Y holds label 3, outside 0\.\.2 for a model with 3 outputs \(at index 5\)",
    ),  # fmt: skip
    "label negative": (
        CE,
        fit(X, put(Y[CE], 1, -1, int)),
        ValueError,
        r"label -1, .*at index 1",
    ),  # fmt: skip
    "label fractional": (
        CE,
        fit(X, put(Y[CE], 2, 1.5)),
        ValueError,
        r"whole numbers, got 1\.5 at index 2",
    ),  # fmt: skip
    "label inf": (CE, fit(X, put(Y[CE], 3, INF)), ValueError, "got inf at index 3"),
    "label huge uint64": (
        CE,
        fit(X, put(Y[CE], 0, 2**40, np.uint64)),
        ValueError,
        "label 1099511627776",
    ),  # fmt: skip
    # one-hot rows that are not one-hot (probability rows are fine, see below)
    "row of two ones": (
        CE,
        fit(X, put(ONE_HOT, (0, 1), 1)),
        ValueError,
        "row 0 sums to 2",
    ),  # fmt: skip
    "negative entry": (
        CE,
        fit(X, put(put(ONE_HOT, (4, 0), 2), (4, 1), -1)),
        ValueError,
        "row 4 sums to 1 and its smallest entry is -1",
    ),  # fmt: skip
    "row sums to 1.002": (
        CE,
        fit(X, put(ONE_HOT, 2, [0.5, 0.3, 0.202])),
        ValueError,
        r"within 0\.001.*row 2 sums to 1\.002",
    ),  # fmt: skip
    "row of zeros": (CE, fit(X, put(ONE_HOT, 3, 0)), ValueError, "row 3 sums to 0"),
    "bce above 1": (
        BCE,
        fit(X, put(Y[BCE], (0, 1), 1.5)),
        ValueError,
        r"\[0, 1\], got 1\.5 at index \(0, 1\)",
    ),  # fmt: skip
    # fit's arguments
    "epochs -3": (MSE, fit(X, Y[MSE], epochs=-3), ValueError, "at least 1, got -3"),
    "epochs 2.0": (MSE, fit(X, Y[MSE], epochs=2.0), TypeError, r"integer, got 2\.0"),
    "epochs None": (MSE, fit(X, Y[MSE], epochs=None), TypeError, "got None"),
    "batch_size -1": (
        MSE,
        fit(X, Y[MSE], batch_size=-1),
        ValueError,
        "batch_size must be at least 1, got -1",
    ),  # fmt: skip
    "batch_size int64 0": (
        MSE,
        fit(X, Y[MSE], batch_size=np.int64(0)),
        ValueError,
        "at least 1, got 0$",
    ),  # fmt: skip
    "batch_size 8.0": (MSE, fit(X, Y[MSE], batch_size=8.0), TypeError, r"got 8\.0"),
    "batch_size True": (MSE, fit(X, Y[MSE], batch_size=True), TypeError, "got True"),
    "patience -1": (MSE, fit(X, Y[MSE], patience=-1), ValueError, "patience .* -1"),
    "min_delta NaN": (
        MSE,
        fit(X, Y[MSE], min_delta=NAN),
        ValueError,
        r"min_delta must be in \[0\.0, inf\), got nan",
    ),  # fmt: skip
    "verbose 'yes'": (MSE, fit(X, Y[MSE], verbose="yes"), ValueError, "got 'yes'"),
    "batch of one left": (
        MSE,
        fit(X[:5], Y[MSE][:5], batch_size=2),
        ValueError,
        "5 samples in batches of 2 leave a batch of 1",
    ),  # fmt: skip
    # validation data
    "validation triple": (
        MSE,
        fit(X, Y[MSE], validation_data=(X, Y[MSE], Y[MSE])),
        ValueError,
        r"pair \(X_val, Y_val\), got a tuple of 3",
    ),  # fmt: skip
    "validation dict": (
        MSE,
        fit(X, Y[MSE], validation_data={"X": X}),
        ValueError,
        "got dict",
    ),  # fmt: skip
    "validation features": (
        MSE,
        fit(X, Y[MSE], validation_data=(X[:, :2], Y[MSE])),
        ValueError,
        r"X_val has 2 features but the model takes 4 \(shape \(6, 2\)\)",
    ),  # fmt: skip
    "validation NaN": (
        MSE,
        fit(X, Y[MSE], validation_data=(X, put(Y[MSE], 0, NAN))),
        ValueError,
        r"Y_val contains NaN or inf \(first at index \(0, 0\)\)",
    ),  # fmt: skip
    "validation rows": (
        MSE,
        fit(X, Y[MSE], validation_data=(X, Y[MSE][:4])),
        ValueError,
        "X_val has 6 rows but Y_val has 4",
    ),  # fmt: skip
    "validation label": (
        CE,
        fit(X, Y[CE], validation_data=(X, put(Y[CE], 2, 7, int))),
        ValueError,
        "Y_val holds label 7",
    ),  # fmt: skip
    # sample weights
    "negative weight": (
        MSE,
        fit(X, Y[MSE], sample_weight=put(np.ones(N), 2, -1)),
        ValueError,
        r"non-negative, got -1\.0 at index 2",
    ),  # fmt: skip
    "zero weights": (
        MSE,
        fit(X, Y[MSE], sample_weight=np.zeros(N)),
        ValueError,
        r"positive sum, got 0\.0",
    ),  # fmt: skip
    "NaN weight": (
        MSE,
        lambda m: m.train_step(X, Y[MSE], sample_weight=put(np.ones(N), 1, NAN)),
        ValueError,
        r"sample_weight contains NaN or inf \(first at index \(1,\)\)",
    ),  # fmt: skip
    "2-D weights": (
        MSE,
        lambda m: m.train_step(X, Y[MSE], sample_weight=np.ones((N, 1))),
        ValueError,
        r"sample_weight must be 1-D, got an array of shape \(6, 1\)",
    ),  # fmt: skip
    "too few weights": (
        MSE,
        lambda m: m.loss(X, Y[MSE], sample_weight=np.ones(4)),
        ValueError,
        "4 entries for 6 samples",
    ),  # fmt: skip
    "string weights": (
        MSE,
        lambda m: m.gradients(X, Y[MSE], sample_weight=["1"] * N),
        TypeError,
        "sample_weight must hold real numbers",
    ),  # fmt: skip
}


@pytest.mark.parametrize(
    ("loss", "call", "error", "match"), BAD_CALLS.values(), ids=BAD_CALLS
)
def test_bad_call_is_refused_and_changes_nothing(loss, call, error, match):
    model, twin = build(loss), build(loss)
    with pytest.raises(error, match=match):
        call(model)
    assert_same_state(model, twin)
    model.train_step(X, Y[loss])  # and the model still trains as its twin does
    twin.train_step(X, Y[loss])
    assert_same_state(model, twin)


# -- bad constructor arguments: the optimizer passed in stays free -------------------

BAD_MODELS = {
    "sizes None": ({"sizes": None}, TypeError, "list of layer widths, got None"),
    "sizes one entry": ({"sizes": (4,)}, ValueError, r"2 entries .*got \[4\]"),
    "sizes numpy zero": (
        {"sizes": np.array([4, 0, 3])},
        ValueError,
        r"sizes\[1\] must be .*, got 0$",
    ),  # fmt: skip
    "sizes numpy negative": (
        {"sizes": np.array([4, 5, -3])},
        ValueError,
        r"sizes\[2\] .* got -3$",
    ),  # fmt: skip
    "sizes a string": ({"sizes": "453"}, TypeError, r"sizes\[0\] .* integer, got '4'"),
    "hidden None": ({"hidden": None}, TypeError, "names, got None"),
    "hidden empty list": ({"hidden": []}, ValueError, "0 activations for 1 hidden"),
    "hidden [None]": ({"hidden": [None]}, ValueError, "hidden activation None"),
    "hidden ReLU": ({"hidden": "ReLU"}, ValueError, "hidden activation 'ReLU'; exp"),
    "output argmax": ({"output": "argmax"}, ValueError, "output activation 'argmax'"),
    "loss MSE": ({"loss": "MSE"}, ValueError, "unknown loss 'MSE'; expected one"),
    "loss hinge": ({"loss": "hinge"}, ValueError, "unknown loss 'hinge'"),
    "optimizer class": ({"optimizer": fastnn.SGD}, ValueError, "optimizer <class"),
    "optimizer Adam": ({"optimizer": "Adam"}, ValueError, "unknown optimizer 'Adam'"),
    "optimizer NaN lr": (
        {"optimizer": {"name": "sgd", "lr": NAN}},
        ValueError,
        r"lr must be in \(0\.0, inf\), got nan",
    ),  # fmt: skip
    "optimizer no name": ({"optimizer": {"lr": 0.1}}, ValueError, "optimizer None"),
    "dropout NaN": ({"dropout": NAN}, ValueError, r"\[0\.0, 1\.0\), got nan"),
    "dropout [1.0]": ({"dropout": [1.0]}, ValueError, r"got 1\.0"),
    "bn_momentum -0.1": ({"bn_momentum": -0.1}, ValueError, r"got -0\.1"),
    "bn_eps NaN": ({"bn_eps": NAN}, ValueError, r"bn_eps must be in \(0\.0, inf\)"),
    "seed -1": ({"seed": -1}, ValueError, "seed must be .*; got -1"),
    "seed 1.5": ({"seed": 1.5}, TypeError, r"seed must be .*; got 1\.5"),
}


@pytest.mark.parametrize(
    ("kwargs", "error", "match"), BAD_MODELS.values(), ids=BAD_MODELS
)
def test_bad_model_is_refused_and_leaves_the_optimizer_free(kwargs, error, match):
    optimizer = fastnn.SGD(lr=0.1)
    kwargs = {"sizes": [N_IN, 5, N_OUT], "optimizer": optimizer, **kwargs}
    with pytest.raises(error, match=match):
        fastnn.MLP(**kwargs)
    assert fastnn.MLP([N_IN, 5, N_OUT], optimizer=optimizer).optimizer is optimizer


BAD_HYPER = [
    (fastnn.SGD, "lr", -INF, ValueError, r"lr must be in \(0\.0, inf\), got -inf"),
    (fastnn.SGD, "lr", None, TypeError, "lr must be a real number, got None"),
    (fastnn.SGD, "lr", np.float32("nan"), ValueError, "lr must be in .*got nan"),
    (fastnn.SGD, "momentum", INF, ValueError, r"momentum must be in \[0\.0, inf\)"),
    (fastnn.SGD, "momentum", -1e-9, ValueError, "got -1e-09"),
    (fastnn.SGD, "weight_decay", NAN, ValueError, "weight_decay must be in .*nan"),
    (fastnn.SGD, "decay_bias", "no", TypeError, "True or False, got 'no'"),
    (
        fastnn.Adam,
        "beta1",
        NAN,
        ValueError,
        r"beta1 must be in \[0\.0, 1\.0\), got nan",
    ),
    (fastnn.Adam, "beta2", -0.5, ValueError, r"beta2 .*got -0\.5"),
    (fastnn.Adam, "eps", NAN, ValueError, "eps must be in .*nan"),
    (fastnn.Adam, "eps", INF, ValueError, "eps must be in .*got inf"),
    (fastnn.AdamW, "beta1", 1.0, ValueError, r"beta1 .*got 1\.0"),
    (fastnn.AdamW, "lr", -1e-3, ValueError, "got -0.001"),
    (fastnn.AdamW, "weight_decay", -0.01, ValueError, "weight_decay .*got -0.01"),
]


@pytest.mark.parametrize(("cls", "name", "value", "error", "match"), BAD_HYPER)
def test_bad_hyperparameter_is_refused(cls, name, value, error, match):
    with pytest.raises(error, match=match):
        cls(**{name: value})
    model, twin = build(optimizer=cls(lr=0.01)), build(optimizer=cls(lr=0.01))
    with pytest.raises(error, match=match):
        setattr(model.optimizer, name, value)
    assert_same_state(model, twin)
    model.train_step(X, Y[CE])  # the kernels saw no trace of the bad value
    twin.train_step(X, Y[CE])
    assert_same_state(model, twin)


# -- bad files -----------------------------------------------------------------------


def _saved_with(**changes):
    """A saved model whose JSON header has ``changes`` applied."""

    def make(path):
        save(build(), path)
        with np.load(path) as data:
            arrays = {k: data[k] for k in data.files}
        header = json.loads(arrays["header"].tobytes())
        header.update(changes)
        arrays["header"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
        with open(path, "wb") as file:
            np.savez(file, **arrays)

    return make


def _saved_plus(**extra):
    def make(path):
        save(build(), path)
        with np.load(path) as data:
            arrays = {k: data[k] for k in data.files}
        with open(path, "wb") as file:
            np.savez(file, **arrays, **extra, allow_pickle=True)

    return make


def _bytes(data):
    return lambda path: path.write_bytes(data)


def _prefix(n_bytes):
    def make(path):
        save(build(), path)
        path.write_bytes(path.read_bytes()[:n_bytes])

    return make


BAD_FILES = {
    "one byte": (_bytes(b"P"), "not an .npz file"),
    "empty zip archive": (_bytes(b"PK\x05\x06" + bytes(18)), "has no 'header'"),
    "first 40 bytes": (_prefix(40), "damaged or truncated"),
    "random 100 kB": (_bytes(np.random.default_rng(1).bytes(100_000)), "cannot load"),
    "pickled model": (lambda p: p.write_bytes(pickle.dumps(build())), "never loads"),
    "extra pickled entry": (
        _saved_plus(model=np.array([{"evil": 1}], dtype=object)),
        r"unexpected entries \['model'\]",
    ),
    "version 2": (_saved_with(version=2), r"newer fastnn \(format version 2\)"),
    "version 1.5": (_saved_with(version=1.5), "invalid version 1.5"),
    "version true": (_saved_with(version=True), "invalid version True"),
    "sizes with zero": (_saved_with(sizes=[4, 0, 3]), r"sizes \[4, 0, 3\]"),
    "sizes negative": (_saved_with(sizes=[4, -5, 3]), r"sizes \[4, -5, 3\]"),
    "training 'false'": (_saved_with(training="false"), "invalid training 'false'"),
    "dropout 1.5": (_saved_with(dropout=[1.5]), r"dropout must be in .*got 1\.5"),
    "batch_norm 'yes'": (_saved_with(batch_norm="yes"), "invalid batch_norm 'yes'"),
    "dropout_seed 1.5": (_saved_with(dropout_seed=1.5), "invalid dropout_seed 1.5"),
    "hidden swish": (_saved_with(hidden=["swish"]), "hidden activation 'swish'"),
}


@pytest.mark.parametrize(("make", "match"), BAD_FILES.values(), ids=BAD_FILES)
def test_bad_file_is_refused(tmp_path, make, match):
    path = tmp_path / "model.npz"
    make(path)
    with pytest.raises(ValueError, match=match) as info:
        load(path)
    assert str(path) in str(info.value)


def test_failed_save_changes_nothing(tmp_path):
    model, twin = build(), build()
    with pytest.raises(TypeError, match="not float"):
        save(model, 3.5)
    with pytest.raises(IsADirectoryError):
        model.save(tmp_path)
    assert_same_state(model, twin)
    assert os.listdir(tmp_path) == []


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
        np.testing.assert_allclose(model.predict(X[i : i + 1])[0], P[i], rtol=1e-5)
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
