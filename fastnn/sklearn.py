"""scikit-learn estimators on :class:`fastnn.MLP`: ``MLPClassifier``, ``MLPRegressor``.

They take the parameters of :mod:`sklearn.neural_network` that mean the same thing
and train a :class:`fastnn.MLP` (kept in ``model_``), one compiled call per epoch.
Python runs between epochs only for scikit-learn's stopping rule, early stopping and
learning-rate schedules.

How scikit-learn's objective is mapped onto fastnn's
------------------------------------------------------
scikit-learn's steps follow, per mini-batch of ``B`` samples, the gradient of
``c * fastnn_loss + 0.5 * alpha * ||W||^2 / B``, where ``c`` converts fastnn's loss
(a mean over every output element) into scikit-learn's: ``c = 1`` for softmax
cross-entropy and for a binary classifier's single logistic output, ``c = n_outputs``
for multilabel logistic outputs (scikit-learn sums over the labels) and
``c = n_outputs / 2`` for regression (half the squared error summed over outputs).
Dividing that objective by ``c`` gives fastnn's loss plus an L2 penalty on the
weights (not the intercepts) of gradient ``alpha / (c * B) * W``: the optimizer's
``weight_decay`` with ``decay_bias=False``. Adam is invariant to the scale of the
objective (its ``eps`` is divided by ``c`` too); SGD's learning rate is multiplied by
``c``; so both take scikit-learn's steps.

``loss_curve_`` is what scikit-learn reports, so ``tol`` means the same in both:
the loss on scikit-learn's scale plus, for each batch, ``0.5 * alpha * ||W||^2 / B``,
averaged over the epoch. For regression scikit-learn reports half the squared error
averaged over the outputs (``0.5 * fastnn_loss``), not the sum its steps follow; the
two differ when there are several outputs, and ``loss_curve_`` follows the report.

Differences that remain: the weights start as fastnn starts them (He-normal for relu,
Glorot-uniform otherwise; intercepts at zero); the penalty of a last, smaller batch
uses the full batch size ``B``; with ``sample_weight`` each batch's loss is
``sum(w_i * loss_i) / B`` with weights scaled to mean 1 over the data (scikit-learn
divides by the batch's sum of weights); the L2 part of ``loss_curve_`` uses the
weights at the end of the epoch; Adam adds ``epsilon`` after the bias correction (as
PyTorch), scikit-learn before it; SGD's momentum buffer follows PyTorch's form, which
differs from scikit-learn's velocity only while the learning rate changes
("invscaling", "adaptive"). Only the stochastic solvers exist (no ``"lbfgs"``), and
sparse input is not accepted.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.metrics import accuracy_score, r2_score
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets, type_of_target

from ._sklearn_base import _BaseMLP

__all__ = ["MLPClassifier", "MLPRegressor"]


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier trained by fastnn.

    A drop-in for :class:`sklearn.neural_network.MLPClassifier` with the stochastic
    solvers; see the module docstring for how its objective maps onto fastnn's.
    Binary targets get one logistic output and binary cross-entropy (as
    scikit-learn), multiclass targets a softmax output and cross-entropy, and
    multilabel indicator matrices one logistic output per label.

    Parameters
    ----------
    hidden_layer_sizes : int or sequence of int, default (100,)
        Units of each hidden layer.
    activation : {"identity", "logistic", "tanh", "relu"}, default "relu"
        Activation of the hidden layers (fastnn's identity, sigmoid, tanh, relu).
    solver : {"adam", "sgd"}, default "adam"
        ``fastnn.Adam`` or ``fastnn.SGD``.
    alpha : float, default 1e-4
        Strength of the L2 penalty ``0.5 * alpha * ||W||^2 / batch_size`` on the
        weights (not the intercepts).
    batch_size : int or "auto", default "auto"
        Samples per step; "auto" is ``min(200, n_samples)``.
    learning_rate : {"constant", "invscaling", "adaptive"}, default "constant"
        Schedule of the SGD learning rate, updated between epochs as in
        scikit-learn ("invscaling": ``learning_rate_init / (t + 1) ** power_t`` with
        ``t`` the samples seen; "adaptive": divide by 5 when ``n_iter_no_change``
        epochs did not improve, stop below 1e-6). Adam uses a constant rate.
    learning_rate_init : float, default 1e-3
    power_t : float, default 0.5
    max_iter : int, default 200
        Maximum number of epochs.
    shuffle : bool, default True
        Shuffle the samples every epoch.
    random_state : int, RandomState instance or None, default None
        Seeds the initial weights, the shuffling and the validation split.
    tol : float, default 1e-4
        Training stops when the loss (or, with early stopping, the validation score)
        has not improved by at least ``tol`` for ``n_iter_no_change`` epochs in a row.
    verbose : bool, default False
        Print the loss of each epoch.
    warm_start : bool, default False
        Continue from the fitted weights in the next ``fit`` (with a fresh optimizer,
        as scikit-learn).
    momentum : float, default 0.9
        SGD momentum, in [0, 1].
    nesterovs_momentum : bool, default True
        Nesterov momentum for SGD (when ``momentum > 0``).
    early_stopping : bool, default False
        Hold out ``validation_fraction`` of the data (stratified) and stop when its
        accuracy stops improving; the best epoch's weights are kept.
    validation_fraction : float, default 0.1
    beta_1, beta_2 : float, default 0.9 and 0.999
        Adam's decay rates.
    epsilon : float, default 1e-8
        Adam's epsilon.
    n_iter_no_change : int, default 10
        Epochs without improvement before stopping.
    class_weight : dict, "balanced" or None, default None
        Weights of the classes, multiplied into ``sample_weight``; "balanced" uses
        ``n_samples / (n_classes * np.bincount(y))``. Not for multilabel targets.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels (for multilabel targets, ``0 .. n_labels - 1``).
    model_ : fastnn.MLP
        The trained network; its dtype is float32 if ``X`` was float32 in the first
        fit, float64 otherwise.
    coefs_, intercepts_ : list of ndarray
        The weights and intercepts of each layer: views into ``model_.params``.
    loss_, loss_curve_ : float, list of float
        Training loss (scikit-learn's scale: cross-entropy summed over labels, plus
        the L2 penalty) of the last epoch and of every epoch.
    best_loss_ : float or None
        Lowest training loss so far (None with early stopping).
    validation_scores_ : list of float or None
        Validation accuracy of every epoch, with early stopping.
    best_validation_score_ : float or None
    n_iter_ : int
        Epochs run by the last ``fit`` (1 after ``partial_fit``).
    t_ : int
        Training samples seen.
    n_features_in_, feature_names_in_ : int, ndarray
    n_layers_, n_outputs_ : int
    out_activation_ : {"logistic", "softmax"}
    """

    _is_classifier = True

    def __init__(
        self,
        hidden_layer_sizes: int | Sequence[int] = (100,),
        activation: str = "relu",
        *,
        solver: str = "adam",
        alpha: float = 0.0001,
        batch_size: int | str = "auto",
        learning_rate: str = "constant",
        learning_rate_init: float = 0.001,
        power_t: float = 0.5,
        max_iter: int = 200,
        shuffle: bool = True,
        random_state: int | np.random.RandomState | None = None,
        tol: float = 1e-4,
        verbose: bool = False,
        warm_start: bool = False,
        momentum: float = 0.9,
        nesterovs_momentum: bool = True,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        n_iter_no_change: int | float = 10,
        class_weight: dict | str | None = None,
    ) -> None:
        super().__init__(
            hidden_layer_sizes,
            activation,
            solver=solver,
            alpha=alpha,
            batch_size=batch_size,
            learning_rate=learning_rate,
            learning_rate_init=learning_rate_init,
            power_t=power_t,
            max_iter=max_iter,
            shuffle=shuffle,
            random_state=random_state,
            tol=tol,
            verbose=verbose,
            warm_start=warm_start,
            momentum=momentum,
            nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            n_iter_no_change=n_iter_no_change,
        )
        self.class_weight = class_weight

    def fit(
        self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None
    ) -> MLPClassifier:
        """Train on ``X`` of shape (n_samples, n_features) and labels ``y`` of shape
        (n_samples,), or a multilabel indicator matrix (n_samples, n_labels).

        ``sample_weight`` of shape (n_samples,) weights the samples' losses.
        Returns ``self``.
        """
        return self._fit(X, y, sample_weight, incremental=False)

    def partial_fit(
        self,
        X: ArrayLike,
        y: ArrayLike,
        sample_weight: ArrayLike | None = None,
        classes: ArrayLike | None = None,
    ) -> MLPClassifier:
        """One epoch over ``(X, y)``, continuing from the current weights.

        ``classes`` (all the labels ``y`` will ever hold) is required on the first
        call, unless ``y`` is a multilabel indicator matrix. Returns ``self``.
        """
        if not hasattr(self, "model_"):
            if classes is None and type_of_target(y) != "multilabel-indicator":
                raise ValueError(
                    "classes must be passed on the first call to partial_fit."
                )
        elif classes is not None and not np.array_equal(
            np.unique(classes), self.classes_
        ):
            raise ValueError(
                f"`classes={classes!r}` is not the same as on the first call to "
                f"partial_fit, {self.classes_!r}"
            )
        return self._fit(X, y, sample_weight, incremental=True, classes=classes)

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        """Class probabilities, ndarray of shape (n_samples, n_classes), of the
        model's dtype; columns follow ``classes_``. For multilabel targets, the
        probability of each label."""
        P = self._outputs(X)
        if self._binary:
            return np.hstack([1 - P, P])
        return P

    def predict_log_proba(self, X: ArrayLike) -> np.ndarray:
        """``log(predict_proba(X))``."""
        P = self.predict_proba(X)
        return np.log(P, out=P)

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Predicted labels, shape (n_samples,) (or (n_samples, n_labels) for
        multilabel targets)."""
        return self._decode(self._outputs(X))

    # -- targets --------------------------------------------------------------------

    def _set_targets(self, y, classes):
        check_classification_targets(y)
        kind = type_of_target(y)
        if kind == "multiclass-multioutput":
            raise ValueError("multiclass-multioutput targets are not supported")
        self._multilabel = kind == "multilabel-indicator"
        if self._multilabel:
            self.classes_ = np.arange(y.shape[1])
        else:
            self.classes_ = np.unique(y if classes is None else np.asarray(classes))
            if self.classes_.size < 2:
                raise ValueError(
                    f"y has 1 class ({self.classes_[0]!r}); a classifier needs "
                    "samples of at least 2 classes"
                )
        self._binary = not self._multilabel and self.classes_.size == 2
        self._softmax = not (self._multilabel or self._binary)
        self.out_activation_ = "softmax" if self._softmax else "logistic"
        self._fastnn_loss = "cross_entropy" if self._softmax else "bce"
        self._n_out = 1 if self._binary else self.classes_.size
        self._loss_scale = 1.0 if self._softmax else float(self._n_out)
        self._curve_scale = self._loss_scale

    def _check_targets(self, y):
        multilabel = type_of_target(y) == "multilabel-indicator"
        if multilabel != self._multilabel or (
            multilabel and y.shape[1] != self.classes_.size
        ):
            raise ValueError(
                "y is not the kind of target (labels or multilabel indicator matrix, "
                "and how many labels) seen in the first fit"
            )
        if not multilabel:
            unseen = np.setdiff1d(np.unique(y), self.classes_)
            if unseen.size:
                raise ValueError(
                    f"`y` has classes not in `self.classes_`. `self.classes_` has "
                    f"{self.classes_}. 'y' has {unseen}."
                )

    def _encode(self, y, dtype):
        if self._multilabel:
            return np.ascontiguousarray(y, dtype=dtype)
        codes = np.searchsorted(self.classes_, y)
        if self._binary:
            return codes.astype(dtype)[:, None]
        Y = np.zeros((codes.size, self.classes_.size), dtype)
        Y[np.arange(codes.size), codes] = 1
        return Y

    def _decode(self, P):
        if self._multilabel:
            return (P > 0.5).astype(int)
        if self._binary:
            return self.classes_[(P[:, 0] > 0.5).astype(np.intp)]
        return self.classes_[P.argmax(axis=1)]

    def _class_weights(self, y, weights, incremental):
        if self.class_weight is None:
            return weights
        if self._multilabel:
            raise ValueError("class_weight is not supported for multilabel targets")
        if incremental and self.class_weight == "balanced":
            raise ValueError(
                "class_weight 'balanced' is not supported for partial_fit: pass a "
                "dict of class weights computed on the whole data"
            )
        per_class = compute_class_weight(self.class_weight, classes=self.classes_, y=y)
        w = per_class[np.searchsorted(self.classes_, y)]
        return w if weights is None else w * weights

    def _score_encoded(self, X, y, sample_weight):
        return accuracy_score(
            y, self._decode(self.model_.predict(X)), sample_weight=sample_weight
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor trained by fastnn.

    A drop-in for :class:`sklearn.neural_network.MLPRegressor` with the stochastic
    solvers: an identity output and the squared error, on one or several outputs.
    The parameters are those of :class:`MLPClassifier` without ``class_weight``, and
    ``loss`` first, as in scikit-learn: only ``"squared_error"`` (no ``"poisson"``).
    Early stopping monitors the R² of the held-out part (not stratified).

    Attributes
    ----------
    model_ : fastnn.MLP
        The trained network (float32 if ``X`` was float32 in the first fit).
    coefs_, intercepts_ : list of ndarray
        Views into ``model_.params``.
    loss_, loss_curve_ : float, list of float
        The loss scikit-learn reports: half the squared error averaged over samples
        and outputs (half fastnn's MSE), plus the L2 penalty. The steps follow half
        the squared error summed over outputs, as scikit-learn's do.
    best_loss_, validation_scores_, best_validation_score_, n_iter_, t_
        As :class:`MLPClassifier`, with R² as the validation score.
    n_features_in_, feature_names_in_, n_layers_, n_outputs_
    out_activation_ : "identity"
    """

    _is_classifier = False

    def __init__(
        self,
        loss: str = "squared_error",
        hidden_layer_sizes: int | Sequence[int] = (100,),
        activation: str = "relu",
        *,
        solver: str = "adam",
        alpha: float = 0.0001,
        batch_size: int | str = "auto",
        learning_rate: str = "constant",
        learning_rate_init: float = 0.001,
        power_t: float = 0.5,
        max_iter: int = 200,
        shuffle: bool = True,
        random_state: int | np.random.RandomState | None = None,
        tol: float = 1e-4,
        verbose: bool = False,
        warm_start: bool = False,
        momentum: float = 0.9,
        nesterovs_momentum: bool = True,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        n_iter_no_change: int | float = 10,
    ) -> None:
        super().__init__(
            hidden_layer_sizes,
            activation,
            solver=solver,
            alpha=alpha,
            batch_size=batch_size,
            learning_rate=learning_rate,
            learning_rate_init=learning_rate_init,
            power_t=power_t,
            max_iter=max_iter,
            shuffle=shuffle,
            random_state=random_state,
            tol=tol,
            verbose=verbose,
            warm_start=warm_start,
            momentum=momentum,
            nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            n_iter_no_change=n_iter_no_change,
        )
        self.loss = loss

    def fit(
        self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None
    ) -> MLPRegressor:
        """Train on ``X`` of shape (n_samples, n_features) and targets ``y`` of shape
        (n_samples,) or (n_samples, n_outputs). Returns ``self``."""
        return self._fit(X, y, sample_weight, incremental=False)

    def partial_fit(
        self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None
    ) -> MLPRegressor:
        """One epoch over ``(X, y)``, continuing from the current weights."""
        return self._fit(X, y, sample_weight, incremental=True)

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Predictions, shape (n_samples,) or (n_samples, n_outputs), of the model's
        dtype."""
        P = self._outputs(X)
        return P[:, 0] if P.shape[1] == 1 else P

    def _set_targets(self, y, classes):
        if self.loss != "squared_error":
            raise ValueError(
                f"loss must be 'squared_error' (fastnn has no {self.loss!r} loss)"
            )
        self._n_out = 1 if y.ndim == 1 else y.shape[1]
        self._fastnn_loss = "mse"
        self._loss_scale = self._n_out / 2.0  # the gradient's scale
        self._curve_scale = 0.5  # the reported loss averages over the outputs
        self.out_activation_ = "identity"

    def _check_targets(self, y):
        n_out = 1 if y.ndim == 1 else y.shape[1]
        if n_out != self._n_out:
            raise ValueError(
                f"y has {n_out} outputs but the model was fitted with {self._n_out}"
            )

    def _encode(self, y, dtype):
        return np.ascontiguousarray(y.reshape(y.shape[0], -1), dtype=dtype)

    def _score_encoded(self, X, y, sample_weight):
        P = self.model_.predict(X)
        return r2_score(y, P[:, 0] if y.ndim == 1 else P, sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
