"""Input checks at the boundary of the Python API: one place, clear messages."""

import math
import numbers

import numpy as np

from .kernels import LOSSES
from .kernels import checks as kcheck

DTYPES = {"float32": np.float32, "float64": np.float64}


def check_dtype(dtype) -> type:
    """Return ``np.float32`` or ``np.float64`` for a dtype-like, or raise."""
    if dtype is None:
        raise TypeError("dtype must be 'float32' or 'float64', got None")
    try:
        name = np.dtype(dtype).name
    except TypeError as err:
        raise TypeError(f"dtype must be 'float32' or 'float64', got {dtype!r}") from err
    if name not in DTYPES:
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    return DTYPES[name]


def check_name(value, choices, what):
    """Look ``value`` up in the dict ``choices``; raise naming the options if absent."""
    if not isinstance(value, str) or value not in choices:
        options = ", ".join(repr(c) for c in choices)
        raise ValueError(f"unknown {what} {value!r}; expected one of {options}")
    return choices[value]


def check_positive_int(value, name, minimum=1) -> int:
    """An integer (not bool) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {int(value)!r}")
    return int(value)


def check_real(
    value, name, low=-math.inf, high=math.inf, low_open=False, high_open=False
):
    """A finite real number in the interval given by ``low``, ``high`` and openness."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    too_low = value <= low if low_open else value < low
    too_high = value >= high if high_open else value > high
    if not math.isfinite(value) or too_low or too_high:
        left = "(" if low_open or math.isinf(low) else "["
        right = ")" if high_open or math.isinf(high) else "]"
        raise ValueError(f"{name} must be in {left}{low}, {high}{right}, got {value!r}")
    return value


def as_float_array(data, dtype, name, ndim=2):
    """Convert ``data`` to a C-contiguous, writable, finite array of ``dtype``.

    Integer and bool input is converted; object, string, complex and other kinds are
    refused with a ``TypeError``. Copies only when needed (dtype, order, read-only).
    """
    array = np.asarray(data)
    if array.dtype.kind not in "biuf":
        raise TypeError(
            f"{name} must hold real numbers (float, int or bool), got dtype "
            f"{array.dtype}"
        )
    if array.ndim != ndim:
        raise ValueError(
            f"{name} must be {ndim}-D, got an array of shape {array.shape}"
        )
    if array.size == 0:
        raise ValueError(f"{name} is empty (shape {array.shape})")
    array = np.require(array, dtype=dtype, requirements=["C", "W", "A"])
    if not np.isfinite(array).all():
        refuse_not_finite(array, name, int(np.argmax(~np.isfinite(array.ravel()))))
    return array


def refuse_not_finite(array, name, flat_index):
    """Raise the ``ValueError`` for ``array`` whose first NaN or inf (in C order) is
    at ``flat_index``."""
    where = tuple(int(i) for i in np.unravel_index(flat_index, array.shape))
    raise ValueError(f"{name} contains NaN or inf (first at index {where})")


# -- a model's architecture -----------------------------------------------------------


def make_rng(seed):
    try:
        return np.random.default_rng(seed)
    except (TypeError, ValueError) as err:
        raise type(err)(
            "seed must be None, a non-negative integer or a sequence of them, a "
            f"SeedSequence or a Generator; got {seed!r} ({err})"
        ) from err


def check_sizes(sizes):
    try:
        sizes = list(sizes)
    except TypeError as err:
        raise TypeError(f"sizes must be a list of layer widths, got {sizes!r}") from err
    if len(sizes) < 2:
        raise ValueError(f"sizes needs at least 2 entries (input, output), got {sizes}")
    return [check_positive_int(s, f"sizes[{i}]") for i, s in enumerate(sizes)]


def per_hidden(value, n_hidden, name, check):
    """One value for every hidden layer, or a list with one per hidden layer."""
    values = list(value) if isinstance(value, list | tuple) else [value] * n_hidden
    if len(values) != n_hidden:
        raise ValueError(
            f"{name} lists {len(values)} values for {n_hidden} hidden layers"
        )
    return [check(x, name) for x in values]


def check_rate(value, name):
    return check_real(value, name, 0.0, 1.0, high_open=True)


def check_bool(value, name):
    if not isinstance(value, bool | np.bool_):
        raise TypeError(
            f"{name} must be True or False (or a list of them), got {value!r}"
        )
    return bool(value)


# -- a model's data --------------------------------------------------------------------
# ``model`` is anything with the attributes of a fastnn.MLP that describe its data:
# ``sizes``, ``dtype``, ``loss_name``, ``batch_norm`` and ``training``.

_NO_WEIGHTS = {np.float32: np.empty(0, np.float32), np.float64: np.empty(0, np.float64)}


def check_X(model, X, name="X", ndim=2) -> np.ndarray:
    """Inputs (rows of features; one row when ``ndim`` is 1) as the kernels take
    them: C-contiguous, writable, finite, of the model's dtype."""
    X = as_float_array(X, model.dtype, name, ndim=ndim)
    if X.shape[-1] != model.sizes[0]:
        raise ValueError(
            f"{name} has {X.shape[-1]} features but the model takes "
            f"{model.sizes[0]} (shape {X.shape})"
        )
    return X


def is_ready(model, A, n_cols) -> bool:
    """Whether ``A`` is already a 2-D, C-contiguous, writable, non-empty array of the
    model's dtype with ``n_cols`` columns: the fast path, which only has to look at
    the values (in compiled code, without temporaries)."""
    return (
        type(A) is np.ndarray
        and A.dtype == model.dtype
        and A.ndim == 2
        and A.shape[0] > 0
        and A.shape[1] == n_cols
        and A.flags.c_contiguous
        and A.flags.writeable
    )


def check_XY(model, X, Y, names=("X", "Y")) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and targets of a training call, as the kernels take them.

    Targets follow the rules of :mod:`fastnn.kernels.checks`; 1-D integer labels
    are one-hot encoded for cross-entropy, and a 1-D ``Y`` is a column for a model
    with one output.
    """
    if (
        is_ready(model, X, model.sizes[0])
        and is_ready(model, Y, model.sizes[-1])
        and X.shape[0] == Y.shape[0]
        and kcheck.check_batch(X, Y, LOSSES[model.loss_name])[0] == kcheck.OK
    ):
        return X, Y
    X = check_X(model, X, names[0])
    Y = check_Y(model, Y, names[1])
    if Y.shape[0] != X.shape[0]:
        raise ValueError(
            f"{names[0]} has {X.shape[0]} rows but {names[1]} has {Y.shape[0]} "
            f"(shapes {X.shape} and {Y.shape})"
        )
    return X, Y


def check_Y(model, Y, name="Y"):
    """Targets of a training call as the kernels take them (see :func:`check_XY`)."""
    n_out, loss = model.sizes[-1], model.loss_name
    Y = np.asarray(Y)
    if Y.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {Y.dtype}")
    if Y.ndim == 1 and loss == "cross_entropy":
        return one_hot(Y, n_out, model.dtype, name)
    if Y.ndim == 1 and n_out == 1:
        Y = Y[:, None]
    if Y.ndim == 1:
        raise ValueError(
            f"{name} is 1-D (shape {Y.shape}) but the model has {n_out} outputs: "
            f'for class labels use loss="cross_entropy"; for the {loss} loss pass '
            f"one row of {n_out} targets per sample (one-hot rows for classes)"
        )
    Y = as_float_array(Y, model.dtype, name)
    if Y.shape[1] != n_out:
        columns = "column" if Y.shape[1] == 1 else "columns"
        hint = ""
        if Y.shape[1] == 1 and loss == "cross_entropy":
            hint = f"; for a column of class labels pass {name}.ravel()"
        raise ValueError(
            f"{name} has {Y.shape[1]} {columns} but the model has {n_out} outputs "
            f"(shape {Y.shape}){hint}"
        )
    status, i, j = kcheck.check_targets(Y, LOSSES[loss])
    if status == kcheck.OUT_OF_RANGE:
        raise ValueError(
            f"{name} for the bce loss must lie in [0, 1], got {Y[i, j].item()!r} "
            f"at index ({i}, {j})"
        )
    if status == kcheck.NOT_DISTRIBUTION:
        raise ValueError(
            f"{name} for cross_entropy must be one-hot (or probability) rows: "
            "non-negative, each summing to 1 (within "
            f"{kcheck.PROBABILITY_TOLERANCE:g}); or pass 1-D integer labels; row {i} "
            f"sums to {Y[i].sum():.6g} and its smallest entry is {Y[i].min():.6g}"
        )
    return Y


def one_hot(labels, n_out, dtype, name="Y"):
    """One-hot rows of ``dtype`` for the 1-D integer (or whole-number) ``labels``,
    each in ``0..n_out-1``."""
    if labels.size == 0:
        raise ValueError(f"{name} is empty")
    if labels.dtype.kind == "f":
        fractional = ~np.isfinite(labels) | (labels != np.round(labels))
        if fractional.any():
            i = int(np.argmax(fractional))
            raise ValueError(
                f"{name} labels must be whole numbers, got {labels[i].item()!r} "
                f"at index {i}"
            )
    if labels.min() < 0 or labels.max() >= n_out:
        i = int(np.argmax((labels < 0) | (labels >= n_out)))
        raise ValueError(
            f"{name} holds label {labels[i].item()!r}, outside 0..{n_out - 1} "
            f"for a model with {n_out} outputs (at index {i})"
        )
    Y = np.zeros((labels.size, n_out), dtype)
    Y[np.arange(labels.size), labels.astype(np.intp)] = 1
    return Y


def check_sample_weight(model, sample_weight, n_samples, normalize=True):
    """Per-sample loss weights: finite, non-negative, with a positive sum; scaled to
    mean 1 when ``normalize`` (the loss is then the weighted average of the
    per-sample losses). ``None`` gives an empty array (no weighting)."""
    if sample_weight is None:
        return _NO_WEIGHTS[model.dtype]
    w = as_float_array(sample_weight, model.dtype, "sample_weight", ndim=1)
    if w.shape[0] != n_samples:
        raise ValueError(
            f"sample_weight has {w.shape[0]} entries for {n_samples} samples"
        )
    if (w < 0).any():
        i = int(np.argmax(w < 0))
        raise ValueError(
            f"sample_weight must be non-negative, got {w[i].item()!r} at index {i}"
        )
    if w.sum() <= 0:
        total = float(w.sum())
        raise ValueError(f"sample_weight must have a positive sum, got {total!r}")
    return w * (n_samples / w.sum()) if normalize else w


def check_batches(model, n_samples, batch_size, training):
    """Batch normalization in training needs at least two samples in every batch:
    refuse ``n_samples`` rows cut into batches of ``batch_size`` that leave one."""
    if not training or not any(model.batch_norm):
        return
    if batch_size == n_samples == 1:
        raise ValueError(
            "batch normalization needs more than one sample per batch in "
            "training (call model.eval() to use the running statistics)"
        )
    if batch_size == 1 or n_samples % batch_size == 1:
        raise ValueError(
            f"with batch normalization every batch needs at least 2 samples; "
            f"{n_samples} samples in batches of {batch_size} leave a batch of 1"
        )


def check_training_input(
    model, X, Y, sample_weight
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(X, Y, sample_weight)`` checked for one training call on the whole batch:
    the arrays the kernels take, the weights scaled to mean 1 (empty for none)."""
    X, Y = check_XY(model, X, Y)
    w = check_sample_weight(model, sample_weight, X.shape[0])
    check_batches(model, X.shape[0], X.shape[0], model.training)
    return X, Y, w
