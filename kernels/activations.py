"""Activation functions applied in place to one row, and their derivatives.

The derivative is computed from the forward *output* ``a`` (STYLE #6): sigmoid' is
``a (1 - a)``, tanh' is ``1 - a**2``, relu' is ``a > 0``. Backward therefore needs no
stored pre-activation. Every function works on a 1-D row, so the dense kernels can run
the epilogue right after a row is computed, while it is still in cache.
"""

from .config import internal, public
from .vmath import _exp, _sigmoid, _tanh

IDENTITY = 0
SIGMOID = 1
TANH = 2
RELU = 3
LEAKY_RELU = 4
SOFTMAX = 5

#: Slope of leaky ReLU for negative inputs.
LEAKY_SLOPE = 0.01

#: Name -> code, for the Python layer (STYLE #5).
ACTIVATIONS = {
    "identity": IDENTITY,
    "sigmoid": SIGMOID,
    "tanh": TANH,
    "relu": RELU,
    "leaky_relu": LEAKY_RELU,
    "softmax": SOFTMAX,
}


@internal
def _bias_activation_row(row, b, act):
    """Overwrite ``row`` with ``act(row + b)``.

    Parameters
    ----------
    row : ndarray of shape (n_out,)
        Pre-activation without bias; overwritten with the activation output.
    b : ndarray of shape (n_out,)
        Bias, same dtype as ``row``.
    act : int
        Activation code.

    Sigmoid, tanh and the softmax's exponentials are :mod:`.vmath`'s, which LLVM
    vectorizes (libm's would be one call per element). Sigmoid never overflows:
    ``exp`` is only taken of non-positive numbers. Softmax subtracts the row maximum
    before exponentiating.
    """
    one = row.dtype.type(1)
    n = row.shape[0]
    if act == IDENTITY:
        for j in range(n):
            row[j] = row[j] + b[j]
    elif act == SIGMOID:
        for j in range(n):
            row[j] = _sigmoid(row[j] + b[j])
    elif act == TANH:
        for j in range(n):
            row[j] = _tanh(row[j] + b[j])
    elif act == RELU:
        zero = row.dtype.type(0)
        for j in range(n):
            z = row[j] + b[j]
            row[j] = zero if z < zero else z  # NaN stays NaN
    elif act == LEAKY_RELU:
        slope = row.dtype.type(LEAKY_SLOPE)
        for j in range(n):
            z = row[j] + b[j]
            row[j] = slope * z if z < 0 else z
    elif act == SOFTMAX:
        zmax = row[0] + b[0]
        for j in range(n):
            z = row[j] + b[j]
            row[j] = z
            zmax = max(zmax, z)
        total = row.dtype.type(0)
        for j in range(n):
            e = _exp(row[j] - zmax)
            row[j] = e
            total += e
        inv = one / total
        for j in range(n):
            row[j] *= inv


@internal
def _activation_grad_row(a, d, act):
    """Turn ``d`` = dL/dA into dL/dZ in place, using the forward output ``a``.

    Parameters
    ----------
    a : ndarray of shape (n_out,)
        Output of the activation for one sample.
    d : ndarray of shape (n_out,)
        dL/dA on entry, dL/dZ on exit.
    act : int
        Activation code. For ``SOFTMAX`` this is the exact Jacobian-vector product
        ``a * (d - sum(a * d))``.
    """
    one = a.dtype.type(1)
    zero = a.dtype.type(0)
    n = a.shape[0]
    if act == IDENTITY:
        return
    elif act == SIGMOID:
        for j in range(n):
            d[j] *= a[j] * (one - a[j])
    elif act == TANH:
        for j in range(n):
            d[j] *= one - a[j] * a[j]
    elif act == RELU:
        for j in range(n):
            d[j] *= one if a[j] > zero else zero
    elif act == LEAKY_RELU:
        slope = a.dtype.type(LEAKY_SLOPE)
        for j in range(n):
            d[j] *= one if a[j] > zero else slope
    elif act == SOFTMAX:
        dot = zero
        for j in range(n):
            dot += a[j] * d[j]
        for j in range(n):
            d[j] = a[j] * (d[j] - dot)


bias_activation_row = public(_bias_activation_row)
activation_grad_row = public(_activation_grad_row)
