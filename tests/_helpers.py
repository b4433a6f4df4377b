"""Helpers shared by several test files: the reference at a model's parameters, a
small model with every kind of state and its data, state comparisons, and the trained
models that ``io`` tests save."""

import numpy as np

import fastnn

import reference

# -- the plain-NumPy reference at a model's parameters ---------------------------------


def acts_of(model):
    """The activation codes of the model's layers."""
    return [int(a) for a in model.layout[:, 3]]


def reference_gradients(model, X, Y):
    """``reference.mlp_loss_and_gradients`` in float64 at the model's parameters,
    on ``X`` and ``Y`` rounded to the model's dtype first."""
    X64 = np.asarray(X).astype(model.dtype).astype(np.float64)
    Y64 = np.asarray(Y).astype(model.dtype).astype(np.float64)
    return reference.mlp_loss_and_gradients(
        X64,
        Y64,
        [W.astype(np.float64) for W in model.weights],
        [b.astype(np.float64) for b in model.biases],
        acts_of(model),
        model.loss_name,
    )


def reference_predict(model, X):
    X64 = np.asarray(X).astype(model.dtype).astype(np.float64)
    return reference.mlp_forward(
        X64,
        [W.astype(np.float64) for W in model.weights],
        [b.astype(np.float64) for b in model.biases],
        acts_of(model),
    )[-1]


# -- a model with batch normalization and dropout, and data for it ------------------

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
MSE, BCE, CE = "mse", "bce", "cross_entropy"


def build(loss="cross_entropy", optimizer=None, dtype="float64", regularized=True):
    """A model with batch normalization and dropout (unless not ``regularized``), two
    Adam steps in, so that every part of its state (parameters, moments, step count,
    running statistics, shuffling RNG) is non-trivial."""
    model = fastnn.MLP(
        [N_IN, 5, N_OUT], hidden="tanh", loss=loss, dtype=dtype, seed=0,
        optimizer=optimizer or fastnn.Adam(lr=0.01),
        dropout=0.2 if regularized else 0.0, batch_norm=regularized,
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
    """A copy of ``array`` as ``dtype`` with ``array[index] = value``."""
    array = np.array(array, dtype=dtype)
    array[index] = value
    return array


def snapshot(model):
    """Copies of everything a failed call must leave alone."""
    opt = model.optimizer
    return (model.params.copy(), opt.state.copy(), opt.step.copy())


def assert_unchanged(model, saved):
    params, state, step = saved
    np.testing.assert_array_equal(model.params, params)
    np.testing.assert_array_equal(model.optimizer.state, state)
    np.testing.assert_array_equal(model.optimizer.step, step)


# -- models for save and load ----------------------------------------------------------

ARCHITECTURES = {
    "softmax": dict(sizes=[3, 5, 2], hidden="relu", loss="cross_entropy"),
    "mse": dict(sizes=[3, 4, 4, 1], hidden=["tanh", "sigmoid"], loss="mse"),
    "bce": dict(sizes=[3, 5, 2], hidden="leaky_relu", loss="bce"),
}
OPTIMIZERS = {
    "sgd": lambda: fastnn.SGD(lr=0.1),
    "momentum": lambda: fastnn.SGD(lr=0.05, momentum=0.9),
    "nesterov": lambda: fastnn.SGD(lr=0.05, momentum=0.5, nesterov=True),
    "adam": lambda: fastnn.Adam(lr=0.01, beta1=0.8, beta2=0.99, eps=1e-7),
}


def make_model(arch="softmax", optimizer="adam", dtype=np.float32, seed=0):
    spec = dict(ARCHITECTURES[arch])
    return fastnn.MLP(
        spec.pop("sizes"), optimizer=OPTIMIZERS[optimizer](), dtype=dtype, seed=seed,
        **spec,
    )  # fmt: skip


def batches(model, n_batches, n_samples=4, seed=1):
    """Deterministic training batches that fit the model's loss."""
    rng = np.random.default_rng(seed)
    n_in, n_out = model.sizes[0], model.sizes[-1]
    out = []
    for _ in range(n_batches):
        X = rng.normal(size=(n_samples, n_in))
        if model.loss_name == "cross_entropy":
            Y = rng.integers(0, n_out, n_samples)
        elif model.loss_name == "bce":
            Y = rng.integers(0, 2, (n_samples, n_out)).astype(float)
        else:
            Y = rng.normal(size=(n_samples, n_out))
        out.append((X, Y))
    return out


def trained(arch="softmax", optimizer="adam", dtype=np.float32, steps=3):
    model = make_model(arch, optimizer, dtype)
    for X, Y in batches(model, steps, seed=7):
        model.train_step(X, Y)
    return model


def assert_same_model(loaded, model):
    assert loaded.sizes == model.sizes
    assert loaded.hidden == model.hidden
    assert loaded.output == model.output
    assert loaded.loss_name == model.loss_name
    assert loaded.dtype == model.dtype
    assert loaded.seed == model.seed
    assert type(loaded.optimizer) is type(model.optimizer)
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert loaded.params.dtype == model.params.dtype
    np.testing.assert_array_equal(loaded.params, model.params, strict=True)
    np.testing.assert_array_equal(
        loaded.optimizer.state, model.optimizer.state, strict=True
    )
    np.testing.assert_array_equal(
        loaded.optimizer.step, model.optimizer.step, strict=True
    )
    assert loaded.rng.bit_generator.state == model.rng.bit_generator.state
    for W, W_saved in zip(loaded.weights, model.weights, strict=True):
        np.testing.assert_array_equal(W, W_saved, strict=True)
        assert np.shares_memory(W, loaded.params)  # still views, not rebound
    for b in loaded.biases:
        assert np.shares_memory(b, loaded.params)
