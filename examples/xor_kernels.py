"""Train the primer's XOR network (2-4-1, sigmoid, MSE) with the raw kernels.

The whole training loop runs inside one ``@njit`` function that calls
``fastnn.kernels``; no Python runs between steps. ``examples/xor.py`` does the same
with the model API in a few lines.

The primer's NumPy backward pass was broken: it used variables it never defined, and it
chained the hidden layer's gradient wrongly. The hidden delta is the output delta sent
back through the output weights, times the derivative of the hidden activation taken at
the hidden layer's own output::

    d2 = dL/dA2 * A2 * (1 - A2)          # output layer, sigmoid
    d1 = (d2 @ W2.T) * A1 * (1 - A1)      # hidden layer: W2.T, and A1, not A2

``dense_backward`` does exactly this: it turns dL/dA into dL/dZ and returns dL/dX for
the layer below.
"""

import time

import numpy as np
from numba import njit

from fastnn import kernels as K


@njit
def train(X, Y, W1, b1, W2, b2, epochs, lr):
    n = X.shape[0]
    H = np.empty((n, W1.shape[1]))
    P = np.empty((n, W2.shape[1]))
    dH, dP = np.empty_like(H), np.empty_like(P)
    dW1, db1 = np.empty_like(W1), np.empty_like(b1)
    dW2, db2 = np.empty_like(W2), np.empty_like(b2)
    no_dx = np.empty((0, 0))
    losses = np.empty(epochs)
    for epoch in range(epochs):
        K.dense_forward(X, W1, b1, K.SIGMOID, H)
        K.dense_forward(H, W2, b2, K.SIGMOID, P)
        losses[epoch] = K.mse_loss(P, Y, dP)
        K.dense_backward(H, W2, P, dP, K.SIGMOID, dW2, db2, dH)
        K.dense_backward(X, W1, H, dH, K.SIGMOID, dW1, db1, no_dx)
        W1 -= lr * dW1  # plain gradient descent; fastnn.MLP fuses this too
        b1 -= lr * db1
        W2 -= lr * dW2
        b2 -= lr * db2
    return losses


def main(epochs=5000, lr=2.0, seed=0):
    X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    Y = np.array([[0.0], [1.0], [1.0], [0.0]])
    rng = np.random.default_rng(seed)
    W1, W2 = rng.normal(0.0, 1.0, (2, 4)), rng.normal(0.0, 1.0, (4, 1))
    b1, b2 = np.zeros(4), np.zeros(1)

    train(X, Y, W1.copy(), b1.copy(), W2.copy(), b2.copy(), 1, lr)  # compile
    start = time.perf_counter()
    losses = train(X, Y, W1, b1, W2, b2, epochs, lr)
    elapsed = time.perf_counter() - start

    P = K.dense_forward(
        K.dense_forward(X, W1, b1, K.SIGMOID, np.empty((4, 4))),
        W2,
        b2,
        K.SIGMOID,
        np.empty((4, 1)),
    )
    print(f"loss: {losses[0]:.4f} (epoch 1) -> {losses[-1]:.6f} (epoch {epochs})")
    for x, p in zip(X, P[:, 0], strict=True):
        print(f"  {x.astype(int)} -> {p:.4f} -> {int(p > 0.5)}")
    accuracy = np.mean((P > 0.5) == (Y > 0.5))
    print(f"accuracy {accuracy:.0%}; {epochs} steps in {elapsed * 1e3:.2f} ms")
    return accuracy


if __name__ == "__main__":
    main()
