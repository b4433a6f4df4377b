"""fastnn.sklearn follows scikit-learn's objective: an SGD step moves the parameters
down the gradient of scikit-learn's loss plus its L2 penalty, ``loss_curve_`` is on
scikit-learn's scale, and Adam gets the penalty and epsilon on fastnn's scale."""

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.exceptions import ConvergenceWarning  # noqa: E402

import fastnn  # noqa: E402

from _sklearn_helpers import KINDS, _data, _estimator, _partial_fit, _sklearn_twin  # noqa: E402
from conftest import TOL  # noqa: E402

quiet = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


# -- scikit-learn's objective ----------------------------------------------------------


def _sklearn_data_loss(est, X, y, reported=False):
    """scikit-learn's loss of ``est``'s network on (X, y), in plain NumPy: half the
    squared error summed over outputs, the log loss summed over labels, or the
    cross-entropy, each averaged over samples. ``reported``: the loss scikit-learn
    reports, which averages the squared error over the outputs too."""
    A = X
    for W, b in zip(est.coefs_[:-1], est.intercepts_[:-1], strict=True):
        A = np.tanh(A @ W + b)
    Z = A @ est.coefs_[-1] + est.intercepts_[-1]
    if est.out_activation_ == "identity":
        squares = (Z - y.reshape(len(y), -1)) ** 2
        return 0.5 * (np.mean(squares) if reported else np.mean(squares.sum(axis=1)))
    if est.out_activation_ == "logistic":
        P = 1 / (1 + np.exp(-Z))
        Y = (y == est.classes_[1])[:, None] if y.ndim == 1 else y
        return -np.mean(np.sum(Y * np.log(P) + (1 - Y) * np.log(1 - P), axis=1))
    P = np.exp(Z - Z.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    Y = y[:, None] == est.classes_[None, :]
    return -np.mean(np.sum(Y * np.log(P), axis=1))


def _sklearn_objective(est, X, y, alpha):
    penalty = sum(np.sum(W**2) for W in est.coefs_)
    return _sklearn_data_loss(est, X, y) + 0.5 * alpha * penalty / len(X)


def _numeric_gradient(est, X, y, alpha, eps=1e-6):
    params = est.model_.params  # coefs_ and intercepts_ are views into it
    grad = np.empty_like(params)
    for i in range(params.size):
        saved = params[i]
        params[i] = saved + eps
        up = _sklearn_objective(est, X, y, alpha)
        params[i] = saved - eps
        down = _sklearn_objective(est, X, y, alpha)
        params[i] = saved
        grad[i] = (up - down) / (2 * eps)
    return grad


@pytest.mark.parametrize("kind", KINDS)
def test_sgd_step_follows_sklearn_objective(kind):
    """A full-batch SGD step without momentum moves the parameters by -lr times the
    gradient of scikit-learn's objective (loss on its scale + 0.5 alpha ||W||² / n),
    and loss_curve_ reports scikit-learn's loss (the penalty at the epoch's end)."""
    X, y = _data(kind)
    lr, alpha = 0.05, 0.3
    est = _estimator(
        kind,
        activation="tanh",
        solver="sgd",
        momentum=0.0,
        alpha=alpha,
        learning_rate_init=lr,
        batch_size=len(X),
        shuffle=False,
    )
    _partial_fit(est, X, y, kind)
    before = est.model_.params.copy()
    grad = _numeric_gradient(est, X, y, alpha)
    reported = _sklearn_data_loss(est, X, y, reported=True)
    _partial_fit(est, X, y, kind)
    step = est.model_.params - before
    np.testing.assert_allclose(step, -lr * grad, **TOL["fd_sklearn_step"])
    penalty = sum(np.sum(W**2) for W in est.coefs_)
    expected = reported + 0.5 * alpha * penalty / len(X)
    np.testing.assert_allclose(est.loss_curve_[-1], expected, **TOL["sklearn_loss"])


@pytest.mark.parametrize("kind", KINDS)
@quiet
def test_loss_curve_is_on_sklearns_scale(kind):
    """scikit-learn's loss_curve_ at the same weights, over several batches (its L2
    term is counted once per batch): SGD with a negligible rate barely moves them."""
    X, y = _data(kind)
    params = dict(hidden_layer_sizes=(3,), activation="tanh", solver="sgd",
                  momentum=0.0, learning_rate_init=1e-12, alpha=0.3, batch_size=10,
                  shuffle=False, max_iter=1, random_state=0)  # fmt: skip
    ours = _estimator(kind, **params).fit(X, y)
    twin = _sklearn_twin(ours).set_params(warm_start=True).fit(X, y)
    twin.coefs_ = [W.copy() for W in ours.coefs_]
    twin.intercepts_ = [b.copy() for b in ours.intercepts_]
    twin.fit(X, y)
    assert ours.loss_curve_[-1] == pytest.approx(
        twin.loss_curve_[-1], rel=TOL["sklearn_epochs"]["rtol"]
    )


# scikit-learn's loss / fastnn's: 1 for cross-entropy and one logistic output, the
# number of labels for multilabel, n_outputs / 2 for the squared error.
SCALES = {
    "binary": 1,
    "multiclass": 1,
    "multilabel": 3,
    "regression": 0.5,
    "regression2": 1,
}


@pytest.mark.parametrize(("kind", "scale"), SCALES.items())
def test_adam_gets_the_penalty_and_epsilon_on_fastnn_scale(kind, scale):
    X, y = _data(kind)
    est = _estimator(kind, alpha=0.2, batch_size=8, epsilon=1e-7, max_iter=2)
    with pytest.warns(ConvergenceWarning):
        est.fit(X, y)
    opt = est.model_.optimizer
    assert isinstance(opt, fastnn.Adam) and opt.decay_bias is False
    assert opt.weight_decay == pytest.approx(0.2 / (scale * 8))
    assert opt.eps == pytest.approx(1e-7 / scale)
    assert opt.lr == est.learning_rate_init


@quiet
def test_weight_two_counts_a_sample_twice_for_the_penalty():
    """As in scikit-learn, sample weights act like repeated samples: doubling every
    weight halves the L2 penalty's relative strength."""
    X, y = _data("multiclass")
    a = _estimator("multiclass", alpha=0.5, max_iter=5).fit(X, y, np.full(len(y), 2.0))
    b = _estimator("multiclass", alpha=0.25, max_iter=5).fit(X, y)
    np.testing.assert_allclose(
        a.predict_proba(X), b.predict_proba(X), **TOL["sklearn_epochs"]
    )
    np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, **TOL["sklearn_epochs"])
