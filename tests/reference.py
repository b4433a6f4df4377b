"""A multilayer perceptron in plain NumPy, written to be read rather than to be fast.

This is the reference every kernel in ``fastnn.kernels`` is tested against, and it
is itself checked against central finite differences in ``tests/test_reference.py``.

Conventions (``DESIGN.md``): a dense layer has weights ``W`` of shape
``(n_in, n_out)`` and biases ``b`` of shape ``(n_out,)``; on a batch ``X`` of shape
``(n_samples, n_in)`` it computes ``Z = X @ W + b`` and ``A = f(Z)``. Derivatives of
the activations are written in terms of the forward *output* ``A``, so the backward
pass needs no stored pre-activation ``Z``. Everything is computed in the dtype of
the inputs.

What this fixes in the primer's NumPy XOR example
-------------------------------------------------
The primer's backward pass referred to variables it never defined and chained the
hidden-layer gradient wrongly. For the two-layer net ``a1 = f1(X @ W1 + b1)``,
``a2 = f2(a1 @ W2 + b2)`` the deltas are::

    delta2 = dL/da2 * f2'(a2)                 # dL/dZ2, from the layer's own output
    delta1 = (delta2 @ W2.T) * f1'(a1)        # dL/dZ1: back through W2, then f1'
    dW2, db2 = a1.T @ delta2, delta2.sum(0)
    dW1, db1 = X.T @ delta1, delta1.sum(0)

i.e. the hidden delta is the output delta carried back through ``W2.T`` and then
multiplied by the derivative of the hidden activation, evaluated at the hidden
layer's own output ``a1``. ``dense_backward`` below does one such step and
``mlp_loss_and_gradients`` chains them.
"""

import numpy as np

# Activation codes, the same integers as ``fastnn.kernels``.
IDENTITY = 0
SIGMOID = 1
TANH = 2
RELU = 3
LEAKY_RELU = 4
SOFTMAX = 5

LEAKY_SLOPE = 0.01

ACTIVATIONS = {
    "identity": IDENTITY,
    "sigmoid": SIGMOID,
    "tanh": TANH,
    "relu": RELU,
    "leaky_relu": LEAKY_RELU,
    "softmax": SOFTMAX,
}

# Clamps, as PyTorch uses them: BCELoss clamps log to >= -100, and divisions by a
# probability are guarded by EPSILON = 1e-12.
LOG_MIN = -100.0
EPSILON = 1e-12


def activation_code(act):
    """Return the integer code of an activation given by name or by code.

    Parameters
    ----------
    act : str or int
        A key of ``ACTIVATIONS`` or one of its values.

    Returns
    -------
    code : int
    """
    if isinstance(act, str):
        return ACTIVATIONS[act]
    if int(act) not in ACTIVATIONS.values():
        raise ValueError(f"unknown activation code {act!r}")
    return int(act)


# ---------------------------------------------------------------------------------
# Activations
# ---------------------------------------------------------------------------------


def sigmoid(z):
    """Logistic sigmoid ``1 / (1 + exp(-z))``, without overflow for any ``z``.

    ``exp(-|z|)`` lies in ``(0, 1]``, so neither branch can overflow, and each
    branch keeps full relative precision in its own tail.
    """
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def softmax(z):
    """Row-wise softmax; the row maximum is subtracted first so ``exp`` cannot
    overflow."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def activation(z, act):
    """Apply an activation function.

    Parameters
    ----------
    z : ndarray of shape (n_samples, n_out)
        Pre-activations ``Z = X @ W + b``.
    act : str or int
        Activation name or code.

    Returns
    -------
    a : ndarray of shape (n_samples, n_out)
        ``f(z)``, same dtype as ``z``.
    """
    code = activation_code(act)
    if code == IDENTITY:
        return z.copy()
    if code == SIGMOID:
        return sigmoid(z)
    if code == TANH:
        return np.tanh(z)
    if code == RELU:
        return np.where(z > 0, z, 0 * z)
    if code == LEAKY_RELU:
        return np.where(z > 0, z, LEAKY_SLOPE * z)
    return softmax(z)


def activation_backward(a, d_a, act):
    """Carry a gradient back through an activation.

    The derivative is written in terms of the forward output ``a = f(z)``. For
    relu and leaky relu it is taken from ``a > 0``, so at ``z == 0`` exactly it is
    ``0`` and ``LEAKY_SLOPE`` respectively.

    Parameters
    ----------
    a : ndarray of shape (n_samples, n_out)
        Forward output ``f(z)``.
    d_a : ndarray of shape (n_samples, n_out)
        ``dL/da``.
    act : str or int
        Activation name or code.

    Returns
    -------
    d_z : ndarray of shape (n_samples, n_out)
        ``dL/dz``. For softmax this is the exact row-wise Jacobian-vector product
        ``a * (d_a - sum(a * d_a, axis=1))``.
    """
    code = activation_code(act)
    if code == IDENTITY:
        return d_a.copy()
    if code == SIGMOID:
        return d_a * a * (1 - a)
    if code == TANH:
        return d_a * (1 - a * a)
    if code == RELU:
        return np.where(a > 0, d_a, 0 * d_a)
    if code == LEAKY_RELU:
        return np.where(a > 0, d_a, LEAKY_SLOPE * d_a)
    return a * (d_a - np.sum(a * d_a, axis=1, keepdims=True))


# ---------------------------------------------------------------------------------
# One dense layer
# ---------------------------------------------------------------------------------


def dense_forward(X, W, b, act):
    """Forward pass of one dense layer.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_in)
    W : ndarray of shape (n_in, n_out)
    b : ndarray of shape (n_out,)
    act : str or int
        Activation name or code.

    Returns
    -------
    A : ndarray of shape (n_samples, n_out)
        ``f(X @ W + b)``.
    """
    return activation(X @ W + b, act)


def dense_backward(X, W, A, d_A, act):
    """Backward pass of one dense layer.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_in)
        The layer's input.
    W : ndarray of shape (n_in, n_out)
    A : ndarray of shape (n_samples, n_out)
        The layer's output, ``dense_forward(X, W, b, act)``.
    d_A : ndarray of shape (n_samples, n_out)
        ``dL/dA``.
    act : str or int
        Activation name or code.

    Returns
    -------
    dZ : ndarray of shape (n_samples, n_out)
        ``dL/dZ``.
    dW : ndarray of shape (n_in, n_out)
        ``X.T @ dZ``.
    db : ndarray of shape (n_out,)
        ``dZ.sum(axis=0)``.
    dX : ndarray of shape (n_samples, n_in)
        ``dZ @ W.T``.
    """
    dZ = activation_backward(A, d_A, act)
    dW = X.T @ dZ
    db = dZ.sum(axis=0)
    dX = dZ @ W.T
    return dZ, dW, db, dX


# ---------------------------------------------------------------------------------
# Losses: each returns (loss, gradient) with the loss a Python float
# ---------------------------------------------------------------------------------


def clamped_log(x):
    """``max(log(x), -100)``, as PyTorch's ``BCELoss`` clamps it; ``log(0)`` gives
    ``-100`` rather than ``-inf``."""
    with np.errstate(divide="ignore"):
        return np.maximum(np.log(x), LOG_MIN)


def mse(P, Y):
    """Mean squared error over every element.

    Parameters
    ----------
    P : ndarray of shape (n_samples, n_out)
        Predictions.
    Y : ndarray of shape (n_samples, n_out)
        Targets.

    Returns
    -------
    loss : float
        ``mean((P - Y) ** 2)``.
    dP : ndarray of shape (n_samples, n_out)
        ``2 * (P - Y) / P.size``.
    """
    diff = P - Y
    return float(np.mean(diff * diff)), 2 * diff / P.size


def bce(P, Y):
    """Binary cross-entropy averaged over every element.

    Parameters
    ----------
    P : ndarray of shape (n_samples, n_out)
        Predicted probabilities in ``[0, 1]``.
    Y : ndarray of shape (n_samples, n_out)
        Targets in ``[0, 1]``.

    Returns
    -------
    loss : float
        ``-mean(Y * log(P) + (1 - Y) * log(1 - P))`` with each log clamped to
        ``>= -100``.
    dP : ndarray of shape (n_samples, n_out)
        ``(P - Y) / max(P * (1 - P), 1e-12) / P.size``.
    """
    loss = -np.mean(Y * clamped_log(P) + (1 - Y) * clamped_log(1 - P))
    dP = (P - Y) / np.maximum(P * (1 - P), EPSILON) / P.size
    return float(loss), dP


def cross_entropy(P, Y):
    """Categorical cross-entropy averaged over samples.

    Parameters
    ----------
    P : ndarray of shape (n_samples, n_classes)
        Predicted class probabilities, rows summing to 1.
    Y : ndarray of shape (n_samples, n_classes)
        One-hot (or probability) target rows.

    Returns
    -------
    loss : float
        ``-sum(Y * log(P)) / n_samples`` with the log clamped to ``>= -100``.
    dP : ndarray of shape (n_samples, n_classes)
        ``-Y / max(P, 1e-12) / n_samples``.
    """
    n_samples = P.shape[0]
    loss = -np.sum(Y * clamped_log(P)) / n_samples
    dP = -Y / np.maximum(P, EPSILON) / n_samples
    return float(loss), dP


def sigmoid_bce_delta(P, Y):
    """Binary cross-entropy fused with the sigmoid that produced ``P``.

    Parameters
    ----------
    P : ndarray of shape (n_samples, n_out)
        Sigmoid outputs.
    Y : ndarray of shape (n_samples, n_out)
        Targets in ``[0, 1]``.

    Returns
    -------
    loss : float
        As ``bce(P, Y)``.
    dZ : ndarray of shape (n_samples, n_out)
        ``dL/dZ = (P - Y) / P.size``, the sigmoid's derivative cancelled
        analytically.
    """
    return bce(P, Y)[0], (P - Y) / P.size


def softmax_cross_entropy_delta(P, Y):
    """Cross-entropy fused with the softmax that produced ``P``.

    Parameters
    ----------
    P : ndarray of shape (n_samples, n_classes)
        Softmax outputs.
    Y : ndarray of shape (n_samples, n_classes)
        One-hot (or probability) target rows.

    Returns
    -------
    loss : float
        As ``cross_entropy(P, Y)``.
    dZ : ndarray of shape (n_samples, n_classes)
        ``dL/dZ = (P - Y) / n_samples`` (valid when each row of ``Y`` sums to 1).
    """
    return cross_entropy(P, Y)[0], (P - Y) / P.shape[0]


LOSSES = {"mse": mse, "bce": bce, "cross_entropy": cross_entropy}


# ---------------------------------------------------------------------------------
# A whole network
# ---------------------------------------------------------------------------------


def mlp_forward(X, weights, biases, acts):
    """Forward pass through a stack of dense layers.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_in)
    weights : list of ndarray, the i-th of shape (n_i, n_{i+1})
    biases : list of ndarray, the i-th of shape (n_{i+1},)
    acts : list of str or int, one per layer

    Returns
    -------
    outputs : list of ndarray, the i-th of shape (n_samples, n_{i+1})
        Output of every layer; the last is the network's prediction.
    """
    outputs = []
    A = X
    for W, b, act in zip(weights, biases, acts, strict=True):
        A = dense_forward(A, W, b, act)
        outputs.append(A)
    return outputs


def mlp_loss_and_gradients(X, Y, weights, biases, acts, loss):
    """Loss and its gradients with respect to every parameter, by backpropagation.

    The loss gradient is carried through each activation by the plain chain rule
    (``activation_backward``), never by a fused delta, so this also serves to check
    the fused forms.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_in)
    Y : ndarray of shape (n_samples, n_out)
        Targets.
    weights : list of ndarray, the i-th of shape (n_i, n_{i+1})
    biases : list of ndarray, the i-th of shape (n_{i+1},)
    acts : list of str or int, one per layer
    loss : {"mse", "bce", "cross_entropy"}

    Returns
    -------
    loss_value : float
    dWs : list of ndarray, shaped like ``weights``
    dbs : list of ndarray, shaped like ``biases``
    """
    outputs = mlp_forward(X, weights, biases, acts)
    loss_value, d_A = LOSSES[loss](outputs[-1], Y)
    n_layers = len(weights)
    dWs = [None] * n_layers
    dbs = [None] * n_layers
    for i in reversed(range(n_layers)):
        layer_input = X if i == 0 else outputs[i - 1]
        _, dWs[i], dbs[i], d_A = dense_backward(
            layer_input, weights[i], outputs[i], d_A, acts[i]
        )
    return loss_value, dWs, dbs


# ---------------------------------------------------------------------------------
# Optimizer updates, as PyTorch writes them
# ---------------------------------------------------------------------------------


def sgd_step(p, g, buf, lr, momentum=0.0, nesterov=False):
    """One step of ``torch.optim.SGD`` (no dampening, no weight decay).

    Parameters
    ----------
    p, g : ndarray of shape (n_params,)
        Parameters and their gradients.
    buf : ndarray of shape (n_params,) or None
        The momentum buffer; ``None`` before the first step (PyTorch then starts it
        at ``g``).
    lr, momentum : float
    nesterov : bool

    Returns
    -------
    p : ndarray of shape (n_params,)
        ``p - lr * d`` with ``d = g`` without momentum, ``d = buf`` with it and
        ``d = g + momentum * buf`` with Nesterov momentum.
    buf : ndarray of shape (n_params,) or None
        ``g`` on the first step, then ``momentum * buf + g``; ``None`` without
        momentum.
    """
    if momentum == 0:
        return p - lr * g, None
    buf = g.copy() if buf is None else momentum * buf + g
    d = g + momentum * buf if nesterov else buf
    return p - lr * d, buf


def adam_step(p, g, m, v, t, lr, beta1=0.9, beta2=0.999, eps=1e-8):
    """One step of ``torch.optim.Adam`` (no weight decay, no amsgrad).

    Parameters
    ----------
    p, g : ndarray of shape (n_params,)
        Parameters and their gradients.
    m, v : ndarray of shape (n_params,)
        First and second moment estimates (zeros before the first step).
    t : int
        The number of this step, counting from 1.
    lr, beta1, beta2, eps : float

    Returns
    -------
    p : ndarray of shape (n_params,)
        ``p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)``.
    m : ndarray of shape (n_params,)
        ``beta1 * m + (1 - beta1) * g``.
    v : ndarray of shape (n_params,)
        ``beta2 * v + (1 - beta2) * g**2``.
    """
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g
    step_size = lr / (1 - beta1**t)
    denom = np.sqrt(v) / np.sqrt(1 - beta2**t) + eps
    return p - step_size * m / denom, m, v


# ---------------------------------------------------------------------------------
# Explanations: gradients of one output activation with respect to the input
# ---------------------------------------------------------------------------------


def predicted_units(X, weights, biases, acts):
    """The unit with the largest output for each row (the first on ties).

    Returns
    -------
    units : int64 ndarray of shape (n_samples,)
    """
    return np.argmax(mlp_forward(X, weights, biases, acts)[-1], axis=1)


def input_gradient(X, weights, biases, acts, target):
    """Gradient of one output activation per row with respect to the input.

    The explained quantity is ``f_i = A_L[i, target[i]]``, the network's output
    (after its output activation) for the chosen unit; not a loss. Its gradient is
    the one-hot ``dA_L`` carried back through every layer by ``dense_backward``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_in)
    weights, biases, acts
        As for ``mlp_forward``.
    target : ndarray of int of shape (n_samples,)
        The output unit explained for each row.

    Returns
    -------
    dX : ndarray of shape (n_samples, n_in)
        ``d A_L[i, target[i]] / d X[i, k]``.
    """
    outputs = mlp_forward(X, weights, biases, acts)
    n_samples = X.shape[0]
    d_A = np.zeros_like(outputs[-1])
    d_A[np.arange(n_samples), target] = 1
    for i in reversed(range(len(weights))):
        layer_input = X if i == 0 else outputs[i - 1]
        d_A = dense_backward(layer_input, weights[i], outputs[i], d_A, acts[i])[3]
    return d_A


def gradient_x_input(X, weights, biases, acts, target):
    """``X * input_gradient(X, ...)``, element-wise."""
    return X * input_gradient(X, weights, biases, acts, target)


def integrated_gradients(X, weights, biases, acts, target, baseline, steps):
    """Integrated gradients along the straight path from ``baseline`` to ``X``.

    ``(X - baseline) * mean_s input_gradient(baseline + alpha_s (X - baseline))``
    with the midpoint rule ``alpha_s = (s + 1/2) / steps``, ``s = 0..steps-1``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_in)
    weights, biases, acts
        As for ``mlp_forward``.
    target : ndarray of int of shape (n_samples,)
    baseline : ndarray of shape (n_in,) or (n_samples, n_in)
    steps : int

    Returns
    -------
    attributions : ndarray of shape (n_samples, n_in)
        Row sums approximate ``A_L(X)[i, t] - A_L(baseline)[i, t]``.
    """
    total = np.zeros_like(X)
    for s in range(steps):
        alpha = (s + 0.5) / steps
        point = baseline + alpha * (X - baseline)
        total += input_gradient(point, weights, biases, acts, target)
    return (X - baseline) * total / steps


# -- batch normalization (as torch.nn.BatchNorm1d in training mode) ---------------


def batch_norm_forward(Z, gamma, beta, eps=1e-5):
    """``Y = gamma * (Z - mean) / sqrt(var + eps) + beta`` with batch statistics.

    Returns ``(Y, Zhat, mean, var)``; ``var`` is the biased batch variance.
    """
    mean = Z.mean(axis=0)
    var = Z.var(axis=0)
    Zhat = (Z - mean) / np.sqrt(var + eps)
    return gamma * Zhat + beta, Zhat, mean, var


def batch_norm_backward(dY, Zhat, gamma, var, eps=1e-5):
    """Gradients of batch normalization: returns ``(dZ, d_gamma, d_beta)``."""
    n = dY.shape[0]
    d_gamma = (dY * Zhat).sum(axis=0)
    d_beta = dY.sum(axis=0)
    dZ = gamma / np.sqrt(var + eps) / n * (n * dY - d_beta - Zhat * d_gamma)
    return dZ, d_gamma, d_beta


# -- dropout masks (as fastnn.kernels.dropout draws them) --------------------------


def _splitmix64(x):
    """The SplitMix64 mixer on uint64 arrays (which wrap)."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def dropout_uniforms(key, shape):
    """The uniform ``u`` in [0, 1) of every unit of a block of ``shape`` under the
    64-bit ``key``: ``(splitmix64(key ^ index) >> 11) * 2**-53``, with ``index`` the
    unit's position in memory (``i * n_out + j``). Dropout at rate ``p`` keeps the
    units with ``u >= p``."""
    index = np.arange(np.prod(shape), dtype=np.uint64).reshape(shape)
    return (_splitmix64(np.uint64(key) ^ index) >> np.uint64(11)) * 2.0**-53
