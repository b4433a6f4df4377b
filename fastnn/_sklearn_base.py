"""What the estimators of :mod:`fastnn.sklearn` share: the parameters' names and
bounds, and ``_BaseMLP``, their checks, optimizer and loop of epochs.

``_BaseMLP`` carries out the mapping of scikit-learn's objective onto fastnn's that
the docstring of :mod:`fastnn.sklearn` describes.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Sequence

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.validation import (
    check_array,
    check_is_fitted,
    check_scalar,
    column_or_1d,
    validate_data,
)

from .errors import DivergenceError
from .model import MLP
from .optimizers import SGD, Adam

#: scikit-learn's activation names -> fastnn's.
ACTIVATIONS = {
    "identity": "identity",
    "logistic": "sigmoid",
    "tanh": "tanh",
    "relu": "relu",
}
SOLVERS = ("adam", "sgd")
LEARNING_RATES = ("constant", "invscaling", "adaptive")
FLOAT_DTYPES = (np.float64, np.float32)
#: Numeric parameters: type, bounds and which bounds are allowed (check_scalar's).
INTERVALS = {
    "alpha": (numbers.Real, 0.0, None, "left"),
    "learning_rate_init": (numbers.Real, 0.0, None, "neither"),
    "power_t": (numbers.Real, 0.0, None, "left"),
    "max_iter": (numbers.Integral, 1, None, "left"),
    "tol": (numbers.Real, 0.0, None, "left"),
    "momentum": (numbers.Real, 0.0, 1.0, "both"),
    "validation_fraction": (numbers.Real, 0.0, 1.0, "left"),
    "beta_1": (numbers.Real, 0.0, 1.0, "left"),
    "beta_2": (numbers.Real, 0.0, 1.0, "left"),
    "epsilon": (numbers.Real, 0.0, None, "neither"),
    "n_iter_no_change": (numbers.Integral, 1, None, "left"),  # or np.inf
}


class _BaseMLP(BaseEstimator):
    """What the classifier and the regressor share: parameters, the epoch loop."""

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
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change

    # -- fitted attributes that are views into model_ -------------------------------

    @property
    def coefs_(self) -> list[np.ndarray]:
        """list of ndarray of shape (n_in, n_out): the weights, writable views into
        ``model_.params``."""
        check_is_fitted(self, "model_")
        return self.model_.weights

    @property
    def intercepts_(self) -> list[np.ndarray]:
        """list of ndarray of shape (n_out,): the intercepts, views as ``coefs_``."""
        check_is_fitted(self, "model_")
        return self.model_.biases

    # -- parameters -----------------------------------------------------------------

    def _check_params(self):
        sizes = self.hidden_layer_sizes
        sizes = [sizes] if isinstance(sizes, numbers.Integral) else list(sizes)
        for i, size in enumerate(sizes):
            check_scalar(size, f"hidden_layer_sizes[{i}]", numbers.Integral, min_val=1)
        for name, choices in (
            ("activation", ACTIVATIONS),
            ("solver", SOLVERS),
            ("learning_rate", LEARNING_RATES),
        ):
            value = getattr(self, name)
            if not isinstance(value, str) or value not in choices:
                extra = " (fastnn has no 'lbfgs')" if name == "solver" else ""
                raise ValueError(
                    f"{name} must be one of {', '.join(map(repr, choices))}{extra}; "
                    f"got {value!r}"
                )
        if self.batch_size != "auto":
            check_scalar(self.batch_size, "batch_size", numbers.Integral, min_val=1)
        for name, (kind, low, high, closed) in INTERVALS.items():
            value = getattr(self, name)
            if not (name == "n_iter_no_change" and value == np.inf):
                check_scalar(
                    value,
                    name,
                    kind,
                    min_val=low,
                    max_val=high,
                    include_boundaries=closed,
                )
        return sizes

    def _new_optimizer(self):
        if self.solver == "adam":
            return Adam(
                self.learning_rate_init,
                self.beta_1,
                self.beta_2,
                self.epsilon,
                decay_bias=False,
            )
        return SGD(
            self.learning_rate_init,
            momentum=self.momentum,
            nesterov=bool(self.nesterovs_momentum and self.momentum > 0),
            decay_bias=False,
        )

    def _new_model(self, n_features, hidden, dtype, seed):
        sizes = [n_features, *hidden, self._n_out]
        return MLP(
            sizes,
            hidden=ACTIVATIONS[self.activation],
            loss=self._fastnn_loss,
            optimizer=self._new_optimizer(),
            dtype=dtype,
            seed=seed,
        )

    def _renew_optimizer(self):
        """Give ``model_`` a new optimizer (zero state), as scikit-learn starts each
        ``fit``; ``partial_fit`` keeps the state unless the solver changed."""
        optimizer = self._new_optimizer()
        optimizer.bind(self.model_, self.model_.n_params, self.model_.dtype)
        self.model_.optimizer = optimizer

    def _configure_rates(self, batch_size, weight_ratio):
        """Set the L2 penalty and rates for batches of ``batch_size``;
        ``weight_ratio`` is ``n_samples / sum(sample_weight)``."""
        opt, c = self.model_.optimizer, self._loss_scale
        opt.weight_decay = self.alpha * weight_ratio / (c * batch_size)
        if self.solver == "adam":
            opt.lr, opt.eps = self.learning_rate_init, self.epsilon / c
            opt.beta1, opt.beta2 = self.beta_1, self.beta_2
        else:
            opt.lr = self._learning_rate * c
            if self.nesterovs_momentum and self.momentum > 0:
                opt.momentum, opt.nesterov = self.momentum, True
            else:
                opt.nesterov, opt.momentum = False, self.momentum

    # -- fitting --------------------------------------------------------------------

    def _check_sample_weight(self, sample_weight, X):
        if sample_weight is None:
            return None
        w = check_array(
            sample_weight,
            ensure_2d=False,
            dtype=FLOAT_DTYPES,
            input_name="sample_weight",
        )
        if w.ndim != 1 or w.shape[0] != X.shape[0]:
            raise ValueError(
                f"sample_weight must have shape ({X.shape[0]},), got {w.shape}"
            )
        if (w < 0).any():
            raise ValueError("sample_weight must be non-negative")
        if not w.any():
            raise ValueError("Sample weights must contain at least one non-zero number")
        return w

    def _fit(self, X, y, sample_weight, incremental, classes=None):
        hidden = self._check_params()
        if incremental and self.early_stopping:
            raise ValueError("partial_fit does not support early_stopping=True")
        first = not hasattr(self, "model_") or not (incremental or self.warm_start)
        X, y = validate_data(
            self,
            X,
            y,
            reset=first,
            dtype=FLOAT_DTYPES,
            multi_output=True,
            y_numeric=not self._is_classifier,
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        weights = self._check_sample_weight(sample_weight, X)
        rng = check_random_state(self.random_state)
        if first:
            self._set_targets(y, classes)
        self._check_targets(y)
        dtype = X.dtype if first else self.model_.dtype
        X = np.ascontiguousarray(X, dtype=dtype)
        Y = self._encode(y, dtype)
        weights = self._class_weights(y, weights, incremental)
        if weights is not None:
            weights = weights.astype(dtype)
        if first:
            seed = int(rng.randint(np.iinfo(np.int32).max))
            self.model_ = self._new_model(X.shape[1], hidden, dtype, seed)
            self.loss_curve_, self.t_, self._no_improvement_count = [], 0, 0
            self.best_loss_ = None if self.early_stopping else np.inf
            self.validation_scores_ = [] if self.early_stopping else None
            self.best_validation_score_ = -np.inf if self.early_stopping else None
            self._best_params = None
        elif not incremental or not isinstance(
            self.model_.optimizer, Adam if self.solver == "adam" else SGD
        ):
            self._renew_optimizer()
        if first or not incremental:
            self._learning_rate = float(self.learning_rate_init)
        self.n_layers_ = len(self.model_.sizes)
        self.n_outputs_ = self.model_.sizes[-1]
        validation = None
        if self.early_stopping:
            X, Y, weights, validation = self._split(X, Y, y, weights, rng)
        try:
            self._epochs(X, Y, weights, validation, incremental)
        except DivergenceError as err:
            raise ValueError(
                f"training diverged: {err}. The input may need scaling, or the "
                "learning rate lowering"
            ) from err
        return self

    def _split(self, X, Y, y, weights, rng):
        """scikit-learn's validation split; stratified for single-output labels."""
        stratify = y if self._is_classifier and y.ndim == 1 else None
        arrays = [X, Y, y] if weights is None else [X, Y, y, weights]
        parts = train_test_split(
            *arrays,
            random_state=rng,
            test_size=self.validation_fraction,
            stratify=stratify,
        )
        if parts[1].shape[0] < 2:
            raise ValueError(
                "The validation set is too small. Increase 'validation_fraction' or "
                "the size of your dataset."
            )
        X_val, y_val = parts[1], parts[5]
        w_val = parts[7] if weights is not None else None
        w_train = parts[6] if weights is not None else None
        return parts[0], parts[2], w_train, (X_val, y_val, w_val)

    def _epochs(self, X, Y, weights, validation, incremental):
        """scikit-learn's loop of epochs, each one compiled call of ``model_.fit``."""
        model, n = self.model_, X.shape[0]
        if self.batch_size == "auto":
            batch_size = min(200, n)
        else:
            if self.batch_size > n:
                warnings.warn(
                    "Got `batch_size` less than 1 or larger than sample size. It is "
                    "going to be clipped",
                    stacklevel=4,
                )
            batch_size = min(self.batch_size, n)
        weight_sum = n if weights is None else float(weights.sum())
        self._configure_rates(batch_size, n / weight_sum)
        n_batches = -(-n // batch_size)
        self.n_iter_ = 0
        for _ in range(self.max_iter):
            history = model.fit(
                X,
                Y,
                epochs=1,
                batch_size=batch_size,
                shuffle=self.shuffle,
                sample_weight=weights,
            )
            self.n_iter_ += 1
            self.t_ += n
            penalty = sum(float(np.dot(W.ravel(), W.ravel())) for W in model.weights)
            self.loss_ = (
                self._curve_scale * history.loss[0]
                + 0.5 * self.alpha * penalty * n_batches / weight_sum
            )
            self.loss_curve_.append(self.loss_)
            if self.verbose:
                print(f"Iteration {self.n_iter_}, loss = {self.loss_:.8f}")
            self._update_no_improvement_count(validation)
            if self.solver == "sgd" and self.learning_rate == "invscaling":
                self._learning_rate = (
                    self.learning_rate_init / (self.t_ + 1) ** self.power_t
                )
                self._configure_rates(batch_size, n / weight_sum)
            if self._no_improvement_count > self.n_iter_no_change:
                if not self._lower_learning_rate():
                    break
                self._configure_rates(batch_size, n / weight_sum)
                self._no_improvement_count = 0
            if incremental:
                break
            if self.n_iter_ == self.max_iter:
                warnings.warn(
                    f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) "
                    "reached and the optimization hasn't converged yet.",
                    ConvergenceWarning,
                    stacklevel=4,
                )
        if validation is not None and self._best_params is not None:
            model.params[...] = self._best_params

    def _lower_learning_rate(self):
        """scikit-learn's 'adaptive' schedule: divide by 5 instead of stopping."""
        if (self.solver, self.learning_rate) != ("sgd", "adaptive"):
            return False
        if self._learning_rate <= 1e-6:
            return False
        self._learning_rate /= 5.0
        if self.verbose:
            print(f"Setting learning rate to {self._learning_rate:f}")
        return True

    def _update_no_improvement_count(self, validation):
        """scikit-learn's rule: count epochs that did not improve by ``tol``."""
        if validation is not None:
            X_val, y_val, w_val = validation
            score = self._score_encoded(X_val, y_val, w_val)
            self.validation_scores_.append(score)
            if self.verbose:
                print(f"Validation score: {score:f}")
            if score < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                self._best_params = self.model_.params.copy()
        else:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            self.best_loss_ = min(self.best_loss_, self.loss_curve_[-1])

    def _outputs(self, X):
        check_is_fitted(self, "model_")
        X = validate_data(self, X, reset=False, dtype=self.model_.dtype)
        return self.model_.predict(X)

    def _class_weights(self, y, weights, incremental):
        return weights
