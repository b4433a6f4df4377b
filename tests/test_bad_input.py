"""Bad input is refused with a ``ValueError`` or ``TypeError`` whose message names the
problem and the offending value or shape, and leaves the model exactly as a twin
built with the same seed, which it then still trains in step with.

One table per kind of input, each case once:

- ``BAD_X``: refused by ``predict``, ``loss``, ``gradients``, ``train_step`` and
  ``fit``, for a regression and a classification model;
- ``BAD_TARGETS``: targets, and X-Y pairs, refused by ``loss``, ``gradients``,
  ``train_step`` and ``fit``;
- ``BAD_CALLS``: the other arguments of one call (``fit``'s settings, validation
  data, sample weights);
- ``BAD_MODELS`` and ``BAD_HYPER``: the constructor's arguments and the optimizers'
  hyperparameters, at construction and by assignment.

Damaged files are in ``test_io_damaged.py``.
"""

import numpy as np
import pytest

from _helpers import (
    BCE,
    CE,
    INF,
    MSE,
    N_OUT,
    NAN,
    ONE_HOT,
    N,
    X,
    Y,
    assert_same_state,
    build,
    put,
)


def assert_refused(loss, calls, error, match, regularized=True):
    """Each of ``calls`` raises on a :func:`build` model and changes nothing."""
    model = build(loss, regularized=regularized)
    twin = build(loss, regularized=regularized)
    for call in calls:
        with pytest.raises(error, match=match):
            call(model)
    assert_same_state(model, twin)
    model.train_step(X, Y[loss])  # and the model still trains as its twin does
    twin.train_step(X, Y[loss])
    assert_same_state(model, twin)


def with_targets(X_in, Y_in):
    """The calls that take both X and Y."""
    return [
        lambda m: m.loss(X_in, Y_in),
        lambda m: m.gradients(X_in, Y_in),
        lambda m: m.train_step(X_in, Y_in),
        lambda m: m.fit(X_in, Y_in),
    ]


# -- X: (X, exception, message) ------------------------------------------------------

BAD_X = {
    # shapes
    "1-D": (X[0], ValueError, r"X must be 2-D, got .* \(4,\)"),
    "3-D": (X[None], ValueError, r"2-D, .*shape \(1, 6, 4\)"),
    "0-D": (5.0, ValueError, r"2-D, .* shape \(\)$"),
    "features": (
        X[:, :3],
        ValueError,
        r"X has 3 features but the model takes 4 \(shape \(6, 3\)\)",
    ),  # fmt: skip
    "no rows": (X[:0], ValueError, r"X is empty \(shape \(0, 4\)"),
    "no features": (X[:, :0], ValueError, r"empty \(shape \(6, 0\)"),
    "ragged": ([[1, 2, 3, 4], [1, 2]], ValueError, None),  # NumPy refuses it
    # NaN and inf
    "NaN": (
        put(X, (3, 2), NAN),
        ValueError,
        r"X contains NaN or inf \(first at index \(3, 2\)\)",
    ),  # fmt: skip
    "inf": (put(X, (0, 3), INF), ValueError, r"NaN or inf \(first at index \(0, 3\)"),
    "-inf": (put(X, (5, 0), -INF), ValueError, r"NaN or inf \(first at index \(5, 0"),
    "inf in float32": (
        put(X, (4, 0), INF, np.float32),
        ValueError,
        r"NaN or inf \(first at index \(4, 0\)\)",
    ),  # fmt: skip
    "NaN in a list": ([[0, 1, NAN, 3]], ValueError, r"index \(0, 2\)"),
    # kinds of data
    "object": (X.astype(object), TypeError, "real numbers.*got dtype object"),
    "string": (X.astype(str), TypeError, "real numbers.*got dtype <U"),
    "bytes": (X.astype("S8"), TypeError, r"dtype \|S8"),
    "datetime": (X.astype("M8[s]"), TypeError, "datetime64"),
    "complex": (X.astype(complex), TypeError, "real numbers"),
}


# A plain model and one with batch norm and dropout, whose checks could differ.
MODELS = pytest.mark.parametrize("regularized", [False, True], ids=["plain", "bn"])


@pytest.mark.parametrize(("X_in", "error", "match"), BAD_X.values(), ids=BAD_X)
@pytest.mark.parametrize("loss", [MSE, CE])
@MODELS
def test_bad_X_is_refused_everywhere(regularized, loss, X_in, error, match):
    calls = [lambda m: m.predict(X_in), *with_targets(X_in, Y[loss])]
    assert_refused(loss, calls, error, match, regularized)


# -- targets and X-Y pairs: (loss, X, Y, exception, message) -----------------------

BAD_TARGETS = {
    # shapes
    "rows differ": (
        MSE,
        X,
        Y[MSE][:5],
        ValueError,
        r"X has 6 rows but Y has 5 \(shapes \(6, 4\) and \(5, 3\)\)",
    ),  # fmt: skip
    "fewer labels": (CE, X, Y[CE][:5], ValueError, "6 rows but Y has 5"),
    "more labels": (CE, X[:4], Y[CE], ValueError, "4 rows but Y has 6"),
    "outputs": (
        MSE,
        X,
        Y[MSE][:, :2],
        ValueError,
        r"Y has 2 columns but the model has 3 outputs \(shape \(6, 2\)\)",
    ),  # fmt: skip
    "one-hot too narrow": (CE, X, ONE_HOT[:, :2], ValueError, "2 columns"),
    "one-hot too wide": (CE, X, np.eye(4)[Y[CE]], ValueError, "Y has 4 columns"),
    "Y 1-D": (
        MSE,
        X,
        Y[MSE][:, 0],
        ValueError,
        r'Y is 1-D \(shape \(6,\)\).*"cross_entropy"',
    ),
    "Y 3-D": (MSE, X, Y[MSE][None], ValueError, r"Y must be 2-D, .*\(1, 6, 3\)"),
    # empty
    "no rows": (MSE, X[:0], Y[MSE][:0], ValueError, r"X is empty \(shape \(0, 4\)"),
    "Y empty": (MSE, X, np.zeros((0, N_OUT)), ValueError, "Y is empty"),
    "no labels": (CE, X, Y[CE][:0], ValueError, "Y is empty"),
    # NaN and inf
    "NaN in Y": (MSE, X, put(Y[MSE], (1, 1), NAN), ValueError, "Y contains NaN"),
    "inf in Y": (
        MSE,
        X,
        put(Y[MSE], (1, 0), INF),
        ValueError,
        r"Y contains NaN or inf \(first at index \(1, 0\)\)",
    ),  # fmt: skip
    "NaN in bce Y": (BCE, X, put(Y[BCE], (3, 2), NAN), ValueError, "NaN"),
    "-inf in bce Y": (BCE, X, put(Y[BCE], (5, 2), -INF), ValueError, r"\(5, 2\)"),
    # kinds of data
    "object Y": (MSE, X, Y[MSE].astype(object), TypeError, "real numbers"),
    "string Y": (MSE, X, Y[MSE].astype(str), TypeError, "real numbers"),
    "complex Y": (
        MSE,
        X,
        Y[MSE] + 0j,
        TypeError,
        "Y must hold real numbers.*complex128",
    ),  # fmt: skip
    "object labels": (CE, X, Y[CE].astype(object), TypeError, "dtype object"),
    "string labels": (CE, X, np.array(["a"] * N), TypeError, "real numbers"),
    # probabilities for bce
    "bce above 1": (
        BCE,
        X,
        put(Y[BCE], (0, 1), 1.5),
        ValueError,
        r"\[0, 1\], got 1\.5 at index \(0, 1\)",
    ),  # fmt: skip
    "bce below 0": (BCE, X, put(Y[BCE], (3, 2), -0.1), ValueError, r"\[0, 1\]"),
    # class labels
    "label too large": (
        CE,
        X,
        put(Y[CE], 5, 3, int),
        ValueError,
        r"Y holds label 3, outside 0\.\.2 for a model with 3 outputs \(at index 5\)",
    ),  # fmt: skip
    "label negative": (
        CE,
        X,
        put(Y[CE], 1, -1, int),
        ValueError,
        r"label -1, outside .*at index 1",
    ),  # fmt: skip
    "label fractional": (
        CE,
        X,
        put(Y[CE], 2, 1.5),
        ValueError,
        r"whole numbers, got 1\.5 at index 2",
    ),  # fmt: skip
    "label NaN": (CE, X, put(Y[CE], 2, NAN), ValueError, "whole numbers"),
    "label inf": (CE, X, put(Y[CE], 3, INF), ValueError, "got inf at index 3"),
    "label huge uint64": (
        CE,
        X,
        put(Y[CE], 0, 2**40, np.uint64),
        ValueError,
        "label 1099511627776",
    ),  # fmt: skip
    # one-hot rows that are not one-hot (probability rows are fine, see
    # test_robustness.py)
    "rows of 0.5": (CE, X, np.full((N, N_OUT), 0.5), ValueError, "summing to 1"),
    "row of two ones": (
        CE,
        X,
        put(ONE_HOT, (0, 1), 1),
        ValueError,
        "row 0 sums to 2",
    ),  # fmt: skip
    "negative entry": (
        CE,
        X,
        put(put(ONE_HOT, (4, 0), 2), (4, 1), -1),
        ValueError,
        "non-negative.*row 4 sums to 1 and its smallest entry is -1",
    ),  # fmt: skip
    "row sums to 1.002": (
        CE,
        X,
        put(ONE_HOT, 2, [0.5, 0.3, 0.202]),
        ValueError,
        r"within 0\.001.*row 2 sums to 1\.002",
    ),  # fmt: skip
    "row of zeros": (CE, X, put(ONE_HOT, 3, 0), ValueError, "row 3 sums to 0"),
}


@pytest.mark.parametrize(
    ("loss", "X_in", "Y_in", "error", "match"), BAD_TARGETS.values(), ids=BAD_TARGETS
)
@MODELS
def test_bad_targets_are_refused_everywhere(
    regularized, loss, X_in, Y_in, error, match
):
    assert_refused(loss, with_targets(X_in, Y_in), error, match, regularized)


@pytest.mark.parametrize(
    ("loss", "Y_in"), [(MSE, Y[MSE]), (BCE, Y[BCE]), (CE, Y[CE]), (CE, ONE_HOT)]
)
@MODELS
def test_the_tables_good_input_is_accepted(regularized, loss, Y_in):
    assert np.isfinite(build(loss, regularized=regularized).train_step(X, Y_in))


# -- other arguments of one call: (loss, call, exception, message) -------------------


def fit(*args, **kwargs):
    return lambda m: m.fit(*args, **kwargs)


BAD_CALLS = {
    # fit's settings
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
    assert_refused(loss, [call], error, match)
