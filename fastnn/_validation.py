"""Input checks at the boundary of the Python API: one place, clear messages."""

import math
import numbers

import numpy as np

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
        bad = np.argwhere(~np.isfinite(array))[0]
        raise ValueError(
            f"{name} contains NaN or inf (first at index {tuple(int(i) for i in bad)})"
        )
    return array
