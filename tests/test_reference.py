"""Check tests/reference.py itself against central finite differences, in float64.

Every kernel is compared with the reference, so the reference's analytic
gradients are checked here, for every activation and every loss, before anything
trusts them.
"""

import warnings

import numpy as np
import pytest

import reference as ref
from conftest import TOL

EPS = 1e-5  # finite-difference step
KINK_MARGIN = 1e-2  # keep every pre-activation this far from relu's kink at 0

ACTS = list(ref.ACTIVATIONS)
# (output activation, loss): mse after every activation, bce after sigmoid,
# cross-entropy after softmax.
HEADS = [(act, "mse") for act in ACTS] + [
    ("sigmoid", "bce"),
    ("softmax", "cross_entropy"),
]


def numerical_gradient(f, x):
    """Central-difference gradient of the scalar function ``f()`` with respect to
    the array ``x``, which ``f`` reads and which is perturbed in place.

    Parameters
    ----------
    f : callable
        No arguments; returns a float that depends on ``x``.
    x : ndarray of any shape
        Perturbed element by element, and restored.

    Returns
    -------
    grad : ndarray, shaped like ``x``
    """
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        saved = x[i]
        x[i] = saved + EPS
        f_plus = f()
        x[i] = saved - EPS
        f_minus = f()
        x[i] = saved
        grad[i] = (f_plus - f_minus) / (2 * EPS)
    return grad


def targets(rng, loss, n_samples, n_out):
    """Targets suited to ``loss``: one-hot rows for cross-entropy, ``{0, 1}`` for
    bce, standard normal for mse."""
    if loss == "cross_entropy":
        return np.eye(n_out)[rng.integers(0, n_out, n_samples)]
    if loss == "bce":
        return rng.integers(0, 2, (n_samples, n_out)).astype(np.float64)
    return rng.standard_normal((n_samples, n_out))


def network(rng, sizes, n_samples, acts):
    """Input and parameters of a float64 MLP with every pre-activation at least
    ``KINK_MARGIN`` away from 0, so finite differences never step across a relu
    kink.

    Parameters
    ----------
    rng : numpy.random.Generator
    sizes : list of int
        Layer widths, input first.
    n_samples : int
    acts : list of str, one per layer

    Returns
    -------
    X : ndarray of shape (n_samples, sizes[0])
    weights : list of ndarray, the i-th of shape (sizes[i], sizes[i + 1])
    biases : list of ndarray, the i-th of shape (sizes[i + 1],)
    """
    for _ in range(100):
        X = rng.standard_normal((n_samples, sizes[0]))
        weights = [
            rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)
            for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True)
        ]
        biases = [0.1 * rng.standard_normal(n_out) for n_out in sizes[1:]]
        A, near_kink = X, False
        for W, b, act in zip(weights, biases, acts, strict=True):
            Z = A @ W + b
            near_kink |= bool(np.any(np.abs(Z) < KINK_MARGIN))
            A = ref.activation(Z, act)
        if not near_kink:
            return X, weights, biases
    raise RuntimeError("could not draw a network away from the relu kink")


# ---------------------------------------------------------------------------------
# Activations and one dense layer
# ---------------------------------------------------------------------------------


@pytest.mark.parametrize("act", ACTS)
def test_activation_by_name_and_code_agree(act, rng):
    z = rng.standard_normal((4, 3))
    np.testing.assert_array_equal(
        ref.activation(z, act), ref.activation(z, ref.ACTIVATIONS[act])
    )


@pytest.mark.parametrize("act", ACTS)
def test_dense_backward_matches_finite_differences(act, rng):
    """dZ, dW, db, dX of one layer, for ``L = sum(G * A)`` so that ``dL/dA = G``."""
    X, (W,), (b,) = network(rng, [4, 5], n_samples=6, acts=[act])
    G = rng.standard_normal((6, 5))

    def loss():
        return float(np.sum(G * ref.dense_forward(X, W, b, act)))

    A = ref.dense_forward(X, W, b, act)
    dZ, dW, db, dX = ref.dense_backward(X, W, A, G, act)

    np.testing.assert_allclose(dW, numerical_gradient(loss, W), **TOL["fd_reference"])
    np.testing.assert_allclose(db, numerical_gradient(loss, b), **TOL["fd_reference"])
    np.testing.assert_allclose(dX, numerical_gradient(loss, X), **TOL["fd_reference"])
    # dZ is dL/db sample by sample: check it through db and dW's definitions.
    np.testing.assert_allclose(db, dZ.sum(axis=0))
    np.testing.assert_allclose(dW, X.T @ dZ)


@pytest.mark.parametrize("act", ACTS)
def test_activation_backward_matches_finite_differences(act, rng):
    z = rng.standard_normal((3, 4))
    z[np.abs(z) < KINK_MARGIN] += 2 * KINK_MARGIN
    G = rng.standard_normal((3, 4))

    def loss():
        return float(np.sum(G * ref.activation(z, act)))

    d_z = ref.activation_backward(ref.activation(z, act), G, act)
    np.testing.assert_allclose(d_z, numerical_gradient(loss, z), **TOL["fd_reference"])


@pytest.mark.parametrize("act", ["relu", "leaky_relu"])
def test_relu_derivative_at_zero_is_taken_from_output(act):
    a = ref.activation(np.zeros((1, 1)), act)
    d_z = ref.activation_backward(a, np.ones((1, 1)), act)
    expected = 0.0 if act == "relu" else ref.LEAKY_SLOPE
    np.testing.assert_array_equal(d_z, [[expected]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_extremes_are_finite_without_warnings(dtype):
    z = np.array([[-1000.0, -100.0, 0.0, 100.0, 1000.0]], dtype=dtype)
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise"):
        warnings.simplefilter("error")
        a = ref.activation(z, "sigmoid")
    assert a.dtype == dtype
    np.testing.assert_array_equal(a[0, [0, 2, 4]], [0.0, 0.5, 1.0])
    assert np.all((a >= 0) & (a <= 1))


def test_softmax_of_huge_rows_is_finite_and_normalised():
    z = np.array([[1000.0, 999.0, -1000.0], [1000.0, 1000.0, 1000.0]])
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise"):
        warnings.simplefilter("error")
        a = ref.activation(z, "softmax")
    np.testing.assert_allclose(a.sum(axis=1), 1.0)
    np.testing.assert_allclose(a[1], 1 / 3)


# ---------------------------------------------------------------------------------
# Losses
# ---------------------------------------------------------------------------------


@pytest.mark.parametrize("loss_name", list(ref.LOSSES))
def test_loss_gradient_matches_finite_differences(loss_name, rng):
    P = rng.uniform(0.05, 0.95, (5, 3))
    if loss_name == "mse":
        Y = rng.standard_normal((5, 3))
    elif loss_name == "bce":
        Y = rng.uniform(0.0, 1.0, (5, 3))  # soft targets check the general formula
    else:
        Y = np.eye(3)[rng.integers(0, 3, 5)]
    loss_fn = ref.LOSSES[loss_name]

    def loss():
        return loss_fn(P, Y)[0]

    _, dP = loss_fn(P, Y)
    np.testing.assert_allclose(dP, numerical_gradient(loss, P), **TOL["fd_reference"])


def test_losses_match_their_definitions(rng):
    P = rng.uniform(0.05, 0.95, (4, 3))
    Y = np.eye(3)[[0, 2, 1, 1]]
    assert ref.mse(P, Y)[0] == pytest.approx(np.mean((P - Y) ** 2))
    bce = -np.mean(Y * np.log(P) + (1 - Y) * np.log(1 - P))
    assert ref.bce(P, Y)[0] == pytest.approx(bce)
    assert ref.cross_entropy(P, Y)[0] == pytest.approx(-np.sum(Y * np.log(P)) / 4)


def test_losses_clamp_log_of_zero():
    P = np.array([[0.0, 1.0], [1.0, 0.0]])
    Y_bce = np.array([[1.0, 1.0], [1.0, 0.0]])
    Y_ce = np.array([[1.0, 0.0], [1.0, 0.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bce, dP_bce = ref.bce(P, Y_bce)
        ce, dP_ce = ref.cross_entropy(P, Y_ce)
    # Only P[0, 0] = 0 with Y = 1 is wrong; it costs the clamp's 100.
    assert bce == pytest.approx(100 / 4)
    assert ce == pytest.approx(100 / 2)
    assert np.all(np.isfinite(dP_bce))
    assert np.all(np.isfinite(dP_ce))


@pytest.mark.parametrize(
    ("act", "plain", "fused"),
    [
        ("sigmoid", ref.bce, ref.sigmoid_bce_delta),
        ("softmax", ref.cross_entropy, ref.softmax_cross_entropy_delta),
    ],
)
def test_fused_delta_equals_chain_rule(act, plain, fused, rng):
    P = ref.activation(rng.standard_normal((6, 4)), act)
    Y = np.eye(4)[rng.integers(0, 4, 6)]
    loss_plain, dP = plain(P, Y)
    loss_fused, dZ = fused(P, Y)
    assert loss_fused == loss_plain
    np.testing.assert_allclose(
        dZ, ref.activation_backward(P, dP, act), **TOL["reordered"]
    )


# ---------------------------------------------------------------------------------
# A whole network
# ---------------------------------------------------------------------------------


@pytest.mark.parametrize("hidden", ACTS)
@pytest.mark.parametrize(("output", "loss_name"), HEADS)
def test_mlp_gradients_match_finite_differences(hidden, output, loss_name, rng):
    """dW and db of both layers of a 3-5-4 net on a batch of 6."""
    acts = [hidden, output]
    X, weights, biases = network(rng, [3, 5, 4], n_samples=6, acts=acts)
    Y = targets(rng, loss_name, 6, 4)

    def loss():
        return ref.mlp_loss_and_gradients(X, Y, weights, biases, acts, loss_name)[0]

    _, dWs, dbs = ref.mlp_loss_and_gradients(X, Y, weights, biases, acts, loss_name)
    for W, dW in zip(weights, dWs, strict=True):
        np.testing.assert_allclose(
            dW, numerical_gradient(loss, W), **TOL["fd_reference"]
        )
    for b, db in zip(biases, dbs, strict=True):
        np.testing.assert_allclose(
            db, numerical_gradient(loss, b), **TOL["fd_reference"]
        )


def test_mlp_forward_returns_every_layer_output(rng):
    acts = ["relu", "tanh", "softmax"]
    X, weights, biases = network(rng, [3, 5, 4, 2], n_samples=6, acts=acts)
    outputs = ref.mlp_forward(X, weights, biases, acts)
    assert [A.shape for A in outputs] == [(6, 5), (6, 4), (6, 2)]
    np.testing.assert_allclose(outputs[-1].sum(axis=1), 1.0)


def test_xor_two_layer_backward_by_hand(rng):
    """The primer's XOR net (2-4-1, sigmoid, mse), its deltas written out by hand:
    the hidden delta is the output delta carried back through W2, times the
    hidden activation's derivative at the hidden output."""
    X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    Y = np.array([[0.0], [1.0], [1.0], [0.0]])
    W1, b1 = rng.standard_normal((2, 4)), rng.standard_normal(4)
    W2, b2 = rng.standard_normal((4, 1)), rng.standard_normal(1)

    a1 = ref.sigmoid(X @ W1 + b1)
    a2 = ref.sigmoid(a1 @ W2 + b2)
    delta2 = 2 * (a2 - Y) / a2.size * a2 * (1 - a2)
    delta1 = (delta2 @ W2.T) * a1 * (1 - a1)

    _, dWs, dbs = ref.mlp_loss_and_gradients(
        X, Y, [W1, W2], [b1, b2], ["sigmoid", "sigmoid"], "mse"
    )
    np.testing.assert_allclose(dWs[1], a1.T @ delta2)
    np.testing.assert_allclose(dbs[1], delta2.sum(axis=0))
    np.testing.assert_allclose(dWs[0], X.T @ delta1)
    np.testing.assert_allclose(dbs[0], delta1.sum(axis=0))
