"""Vanishing gradients, and batch normalization as the cure (the primer's point).

A 10-layer sigmoid network on scikit-learn's bundled digits: without batch
normalization the gradient reaching the first layers is tiny and the loss barely
moves; with it, the same network and optimizer train.
"""

import numpy as np
from sklearn.datasets import load_digits

import fastnn


def compare(epochs=30, seed=0):
    """Train the plain and the batch-normalized network; returns both histories."""
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    histories = []
    for batch_norm in (False, True):
        model = fastnn.MLP([64] + [32] * 9 + [10], hidden="sigmoid",
                           loss="cross_entropy", optimizer=fastnn.SGD(0.1, 0.9),
                           batch_norm=batch_norm, seed=seed)  # fmt: skip
        histories.append(model.fit(X, y, epochs=epochs, batch_size=64))
    return histories


def main():
    plain, normed = compare()
    for name, h in (("plain", plain), ("batch-normalized", normed)):
        print(f"{name:>17}: loss {h.loss[0]:.3f} -> {h.loss[-1]:.3f} "
              f"over {h.epochs} epochs")  # fmt: skip


if __name__ == "__main__":
    main()
