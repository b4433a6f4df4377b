"""``fastnn.MLP``: gradients against the reference, losses, init, predict, training.

Bad input and bad arguments are in ``test_bad_input.py`` and ``test_bad_arguments.py``.
"""

import numpy as np
import pytest

import fastnn

from _helpers import (
    assert_unchanged,
    reference_gradients,
    reference_predict,
    snapshot,
)
from conftest import TOL, assert_close

HIDDEN = ["sigmoid", "tanh", "relu", "leaky_relu", "identity"]
# (loss, output): the fused pairs, plus unfused ones whose outputs suit the loss.
HEADS = [
    ("mse", "identity"),
    ("mse", "sigmoid"),
    ("mse", "tanh"),
    ("mse", "softmax"),
    ("bce", "sigmoid"),
    ("bce", "softmax"),
    ("cross_entropy", "softmax"),
    ("cross_entropy", "sigmoid"),
]
SIZES = [5, 7, 6, 3]


def make_targets(rng, loss, n_samples, n_out):
    """One-hot rows for cross-entropy, probabilities for bce, normal for mse."""
    if loss == "cross_entropy":
        return np.eye(n_out)[rng.integers(0, n_out, n_samples)]
    if loss == "bce":
        return rng.random((n_samples, n_out))
    return rng.standard_normal((n_samples, n_out))


# ---------------------------------------------------------------------------------
# Gradients and losses
# ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("loss", "output"), HEADS)
@pytest.mark.parametrize("hidden", HIDDEN)
def test_gradients_match_reference(hidden, loss, output, dtype, rng):
    model = fastnn.MLP(
        SIZES, hidden=hidden, output=output, loss=loss, dtype=dtype, seed=1
    )
    # Non-zero biases, so that their gradients flow into everything.
    for b in model.biases:
        b[...] = 0.1 * rng.standard_normal(b.shape)
    X = rng.standard_normal((8, SIZES[0]))
    Y = make_targets(rng, loss, 8, SIZES[-1])

    value, dW, db = model.gradients(X, Y)
    ref_value, ref_dW, ref_db = reference_gradients(model, X, Y)

    assert isinstance(value, float)
    assert_close(value, ref_value, dtype, "loss")
    assert len(dW) == len(db) == len(SIZES) - 1
    for i in range(len(SIZES) - 1):
        assert dW[i].dtype == dtype and db[i].dtype == dtype
        assert dW[i].shape == model.weights[i].shape
        assert db[i].shape == model.biases[i].shape
        assert_close(dW[i], ref_dW[i], dtype, f"dW[{i}]")
        assert_close(db[i], ref_db[i], dtype, f"db[{i}]")


@pytest.mark.parametrize("sizes", [[4, 2], [3, 5, 1], [6, 1, 4, 2]])
def test_gradients_match_reference_other_shapes(sizes, dtype, rng):
    n_hidden = len(sizes) - 2
    hidden = ["tanh", "leaky_relu"][:n_hidden]
    output = "sigmoid"
    model = fastnn.MLP(
        sizes, hidden=hidden, output=output, loss="bce", dtype=dtype, seed=3
    )
    for n in (1, 9):
        X = rng.standard_normal((n, sizes[0]))
        Y = make_targets(rng, "bce", n, sizes[-1])
        value, dW, db = model.gradients(X, Y)
        ref_value, ref_dW, ref_db = reference_gradients(model, X, Y)
        assert_close(value, ref_value, dtype)
        for i in range(len(sizes) - 1):
            assert_close(dW[i], ref_dW[i], dtype, f"dW[{i}], n={n}")
            assert_close(db[i], ref_db[i], dtype, f"db[{i}], n={n}")


def test_gradients_do_not_change_the_model(rng):
    model = fastnn.MLP(SIZES, hidden="tanh", loss="mse", seed=0)
    saved = snapshot(model)
    X = rng.standard_normal((4, SIZES[0]))
    Y = rng.standard_normal((4, SIZES[-1]))
    _, dW, _ = model.gradients(X, Y)
    assert_unchanged(model, saved)
    dW[0][...] = 123.0  # a copy, not a view of the model's buffers
    assert not np.shares_memory(dW[0], model.grads)
    assert not np.shares_memory(dW[0], model.params)


@pytest.mark.parametrize(("loss", "output"), HEADS)
def test_loss_gradients_and_train_step_agree_exactly(loss, output, dtype, rng):
    model = fastnn.MLP(
        SIZES, hidden="tanh", output=output, loss=loss, dtype=dtype, seed=2
    )
    X = rng.standard_normal((6, SIZES[0]))
    Y = make_targets(rng, loss, 6, SIZES[-1])
    value = model.loss(X, Y)
    assert isinstance(value, float)
    assert model.gradients(X, Y)[0] == value
    assert model.train_step(X, Y) == value
    # The step changed the model, so the loss is recomputed from new parameters.
    after = model.loss(X, Y)
    assert after != value
    assert model.gradients(X, Y)[0] == after


def test_cross_entropy_labels_equal_one_hot(dtype, rng):
    labels = rng.integers(0, 3, 10)
    one_hot = np.eye(3)[labels]
    X = rng.standard_normal((10, 4))
    models = [
        fastnn.MLP([4, 6, 3], hidden="relu", loss="cross_entropy", dtype=dtype, seed=5)
        for _ in range(2)
    ]
    assert models[0].loss(X, labels) == models[1].loss(X, one_hot)
    a, b = models[0].gradients(X, labels), models[1].gradients(X, one_hot)
    assert a[0] == b[0]
    for ga, gb in zip(a[1] + a[2], b[1] + b[2], strict=True):
        np.testing.assert_array_equal(ga, gb)
    for _ in range(3):
        assert models[0].train_step(X, labels) == models[1].train_step(X, one_hot)
    np.testing.assert_array_equal(models[0].params, models[1].params)
    # Labels of any integer dtype, or whole floats, mean the same.
    for other in (labels.astype(np.int8), labels.astype(np.uint16), labels * 1.0):
        assert models[0].loss(X, other) == models[1].loss(X, one_hot)


def test_single_output_accepts_1d_targets(rng):
    model = fastnn.MLP([3, 4, 1], hidden="tanh", loss="bce", seed=0)
    X = rng.standard_normal((5, 3))
    y = rng.integers(0, 2, 5)
    assert model.loss(X, y) == model.loss(X, y[:, None])


# ---------------------------------------------------------------------------------
# Parameters: views, initialisation
# ---------------------------------------------------------------------------------


def test_weights_and_biases_are_views_of_params(dtype):
    model = fastnn.MLP(SIZES, dtype=dtype, seed=0)
    assert model.params.dtype == dtype
    assert model.params.flags.c_contiguous
    assert model.n_params == sum(
        i * o + o for i, o in zip(SIZES[:-1], SIZES[1:], strict=True)
    )
    for W, b, (n_in, n_out) in zip(
        model.weights, model.biases, zip(SIZES[:-1], SIZES[1:], strict=True),
        strict=True,
    ):  # fmt: skip
        assert W.shape == (n_in, n_out) and b.shape == (n_out,)
        assert W.dtype == dtype and b.dtype == dtype
        assert np.shares_memory(W, model.params)
        assert np.shares_memory(b, model.params)
        assert W.flags.writeable and b.flags.writeable
    # Together they tile the flat buffer exactly.
    flat = np.concatenate([np.concatenate([W.ravel(), b]) for W, b in zip(
        model.weights, model.biases, strict=True)])  # fmt: skip
    np.testing.assert_array_equal(flat, model.params)


def test_writing_weights_changes_predictions(dtype, rng):
    model = fastnn.MLP(SIZES, hidden="tanh", dtype=dtype, seed=0)
    X = rng.standard_normal((4, SIZES[0]))
    before = model.predict(X)
    W = rng.standard_normal(model.weights[0].shape)
    model.weights[0][...] = W
    np.testing.assert_array_equal(model.weights[0], W.astype(dtype))
    after = model.predict(X)
    assert not np.allclose(before, after)
    assert_close(after, reference_predict(model, X), dtype)
    model.biases[-1][...] = 7.0
    assert_close(model.predict(X), after + 7.0, dtype)
    # And through the flat buffer.
    model.params[...] = 0
    np.testing.assert_array_equal(model.predict(X), np.zeros((4, SIZES[-1])))


@pytest.mark.parametrize("hidden", ["relu", "leaky_relu"])
def test_he_init_for_relu_layers(hidden):
    n_in, n_out = 500, 400
    model = fastnn.MLP([n_in, n_out, 2], hidden=hidden, dtype="float64", seed=0)
    W = model.weights[0]
    np.testing.assert_allclose(W.std(), np.sqrt(2.0 / n_in), **TOL["init_std_he"])
    assert abs(W.mean()) < 0.01 * np.sqrt(2.0 / n_in) * 10
    # He weights are normal: some lie beyond 3 standard deviations.
    assert np.abs(W).max() > 3 * np.sqrt(2.0 / n_in)


@pytest.mark.parametrize("hidden", ["sigmoid", "tanh", "identity"])
def test_glorot_uniform_init_for_other_layers(hidden):
    n_in, n_out = 300, 200
    model = fastnn.MLP([n_in, n_out, 5], hidden=hidden, dtype="float64", seed=0)
    for W in model.weights:  # hidden layer, and the identity output layer
        limit = np.sqrt(6.0 / (W.shape[0] + W.shape[1]))
        assert np.abs(W).max() <= limit
        assert np.abs(W).max() > 0.95 * limit
        np.testing.assert_allclose(
            W.std(), limit / np.sqrt(3), **TOL["init_std_glorot"]
        )


def test_biases_start_at_zero():
    model = fastnn.MLP([6, 5, 4, 3], hidden=["relu", "sigmoid"], seed=0)
    for b in model.biases:
        np.testing.assert_array_equal(b, 0)
    for W in model.weights:
        assert np.all(W != 0)


def test_init_is_deterministic_for_a_seed(dtype):
    a = fastnn.MLP(SIZES, dtype=dtype, seed=7)
    b = fastnn.MLP(SIZES, dtype=dtype, seed=7)
    c = fastnn.MLP(SIZES, dtype=dtype, seed=8)
    np.testing.assert_array_equal(a.params, b.params)
    assert not np.array_equal(a.params, c.params)
    unseeded = [fastnn.MLP(SIZES, dtype=dtype) for _ in range(2)]
    assert not np.array_equal(unseeded[0].params, unseeded[1].params)


# ---------------------------------------------------------------------------------
# predict
# ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind", ["float64", "float32", "int64", "int8", "bool", "list"]
)
def test_predict_keeps_the_model_dtype(kind, dtype, rng):
    model = fastnn.MLP(SIZES, hidden="tanh", dtype=dtype, seed=0)
    data = rng.standard_normal((3, SIZES[0])) * 3
    if kind == "bool":
        X = data > 0
    elif kind == "list":
        X = data.tolist()
    else:
        X = data.astype(kind)
    out = model.predict(X)
    assert out.dtype == dtype
    assert out.shape == (3, SIZES[-1])
    assert out.flags.c_contiguous
    assert_close(out, reference_predict(model, np.asarray(X)), dtype)


@pytest.mark.parametrize(("loss", "output"), HEADS)
def test_predict_matches_reference(loss, output, dtype, rng):
    model = fastnn.MLP(
        SIZES, hidden="leaky_relu", output=output, loss=loss, dtype=dtype, seed=4
    )
    X = rng.standard_normal((10, SIZES[0]))
    assert_close(model.predict(X), reference_predict(model, X), dtype)


def test_predict_batch_of_one(dtype, rng):
    model = fastnn.MLP(SIZES, hidden="sigmoid", dtype=dtype, seed=0)
    X = rng.standard_normal((1, SIZES[0]))
    out = model.predict(X)
    assert out.shape == (1, SIZES[-1]) and out.dtype == dtype
    assert_close(out, reference_predict(model, X), dtype)


def test_predict_beyond_one_block_equals_row_by_row(dtype, rng):
    n = 1300  # more than two blocks of 512 rows, the last one partial
    model = fastnn.MLP(
        SIZES, hidden="tanh", output="softmax", loss="cross_entropy", dtype=dtype,
        seed=0,
    )  # fmt: skip
    X = rng.standard_normal((n, SIZES[0]))
    out = model.predict(X)
    assert out.shape == (n, SIZES[-1])
    rows = np.vstack([model.predict(X[i : i + 1]) for i in range(n)])
    np.testing.assert_array_equal(out, rows)
    assert_close(out, reference_predict(model, X), dtype)


def test_predict_does_not_depend_on_earlier_calls(rng):
    """The blocks of rows a call runs in come from its own size, not from the larger
    workspace an earlier call (here an explanation, whose blocks hold more per row)
    left to the thread: OpenBLAS's sgemm rounds a row differently in a matmul of
    another row count."""
    model = fastnn.MLP([784, 128, 10], loss="cross_entropy", seed=0, dtype="float32")
    X = rng.standard_normal((5000, 784)).astype(np.float32)
    before = model.predict(X)
    fastnn.explain.integrated_gradients(model, X[:600], steps=2)
    assert np.array_equal(model.predict(X), before)


def test_predict_non_contiguous_input(dtype, rng):
    model = fastnn.MLP(SIZES, hidden="relu", dtype=dtype, seed=0)
    big = rng.standard_normal((12, 2 * SIZES[0]))
    X = big[::2, ::2]
    assert not X.flags.c_contiguous
    np.testing.assert_array_equal(model.predict(X), model.predict(X.copy()))


# ---------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
XOR_Y = np.array([[0], [1], [1], [0]])


@pytest.mark.parametrize("momentum", [0.0, 0.9])
@pytest.mark.parametrize("seed", range(5))
def test_xor_converges(seed, momentum, dtype):
    model = fastnn.MLP(
        [2, 4, 1], hidden="sigmoid", output="sigmoid", loss="mse",
        optimizer=fastnn.SGD(lr=2.0, momentum=momentum), dtype=dtype, seed=seed,
    )  # fmt: skip
    first = model.loss(XOR_X, XOR_Y)
    for _ in range(50):  # at most 5000 steps, checked every 100
        for _ in range(100):
            model.train_step(XOR_X, XOR_Y)
        if np.array_equal(model.predict(XOR_X) > 0.5, XOR_Y == 1):
            break
    np.testing.assert_array_equal(model.predict(XOR_X) > 0.5, XOR_Y == 1)
    assert model.loss(XOR_X, XOR_Y) < first
    assert model.optimizer.step[0] <= 5000


def test_divergence_raises_and_leaves_params_unchanged():
    model = fastnn.MLP(
        [2, 3, 1], hidden="identity", output="identity", loss="mse",
        optimizer=fastnn.SGD(lr=10.0), dtype="float32", seed=0,
    )  # fmt: skip
    X = np.array([[1.0, 2.0], [3.0, -1.0], [0.5, 4.0]])
    Y = np.array([[1e3], [-2e3], [5e2]])
    for _ in range(200):
        saved = snapshot(model)
        try:
            model.train_step(X, Y)
        except fastnn.DivergenceError as err:
            assert "diverged" in str(err)
            assert isinstance(err, FloatingPointError)
            assert np.isfinite(saved[0]).all()  # the loss overflowed, not the params
            assert_unchanged(model, saved)
            break
    else:
        pytest.fail("200 steps with lr=10 did not diverge")
