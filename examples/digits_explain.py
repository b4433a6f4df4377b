"""Which pixels made the digit? Integrated gradients on scikit-learn's digits.

Trains a 64-128-10 network (relu hidden layer, softmax output, cross-entropy, Adam) on
the 8×8 digit images bundled with scikit-learn, then draws a few test images, each
beside its integrated-gradients map for the predicted class: red pixels raised that
class's probability (relative to a blank image, the baseline), blue ones lowered it.
A map's pixels sum to the probability of the class minus its probability on the blank
image (completeness). If the network gets one of the test images wrong, the last pair
shows it: the map then says what the network saw in it.

    python examples/digits_explain.py [out.png] [--epochs 40] [--images 8]

Needs scikit-learn and matplotlib.
"""

import argparse

import numpy as np

import fastnn
from fastnn.explain import integrated_gradients

N_TEST = 360  # of the 1797 images; the rest train the network


def load_data(seed=0):
    """The digits scaled to [0, 1], split at random into train and test sets."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    X = (digits.data / 16.0).astype(np.float32)
    y = digits.target
    order = np.random.default_rng(seed).permutation(len(y))
    test, train = order[:N_TEST], order[N_TEST:]
    return X[train], y[train], X[test], y[test]


def train(X, y, epochs, seed=0):
    """A 64-128-10 relu/softmax network trained with Adam in batches of 64."""
    model = fastnn.MLP([64, 128, 10], hidden="relu", output="softmax",
                       loss="cross_entropy", optimizer=fastnn.Adam(lr=1e-3),
                       seed=seed)  # fmt: skip
    model.fit(X, y, epochs=epochs, batch_size=64)
    return model


def pick(y, predicted, n):
    """``n`` test images of different digits, the first misclassified one (if any)
    last."""
    wrong = np.flatnonzero(predicted != y)
    last = [int(wrong[0])] if len(wrong) else []
    chosen, seen = [], {int(y[i]) for i in last}
    for i in range(len(y)):
        if len(chosen) + len(last) == n:
            break
        if int(y[i]) not in seen and predicted[i] == y[i]:
            chosen.append(i)
            seen.add(int(y[i]))
    return np.array(chosen + last)


def plot(path, images, attributions, labels, predicted, probs, per_row=4):
    """Each image beside its attribution map, ``per_row`` pairs a row; saves a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(images)
    rows = -(-n // per_row)
    fig, axes = plt.subplots(
        rows, 2 * per_row, figsize=(1.8 * 2 * per_row, 2.3 * rows + 0.8), squeeze=False
    )
    for ax in axes.ravel():
        ax.set_axis_off()
    for i in range(n):
        ax_img, ax_map = axes[i // per_row, 2 * (i % per_row) : 2 * (i % per_row) + 2]
        ax_img.imshow(images[i].reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
        wrong = "" if predicted[i] == labels[i] else " (wrong)"
        ax_img.set_title(f"a {labels[i]}, predicted {predicted[i]}{wrong}", fontsize=9)
        scale = float(np.abs(attributions[i]).max()) or 1.0
        ax_map.imshow(
            attributions[i].reshape(8, 8), cmap="RdBu_r", vmin=-scale, vmax=scale
        )
        total = attributions[i].sum()
        ax_map.set_title(
            f"IG for {predicted[i]}: p={probs[i]:.2f}\nsum of map {total:+.2f}",
            fontsize=9,
        )
    fig.suptitle(
        "Integrated gradients of the predicted class's probability from a blank image: "
        "red pixels raised it, blue lowered it\n(each map on its own symmetric scale; "
        "its sum is p(image) - p(blank))",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv=None):
    """Train, explain, draw. Returns the path of the PNG."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", default="digits_explain.png")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    X_train, y_train, X_test, y_test = load_data(args.seed)
    model = train(X_train, y_train, args.epochs, args.seed)
    P = model.predict(X_test)
    predicted = P.argmax(axis=1)
    accuracy = np.mean(predicted == y_test)
    print(f"test accuracy after {args.epochs} epochs: {accuracy:.3f}")

    chosen = pick(y_test, predicted, args.images)
    X = X_test[chosen]
    attributions = integrated_gradients(model, X, steps=args.steps)  # target: predicted
    rows = np.arange(len(chosen))
    p = P[chosen, predicted[chosen]]
    p0 = model.predict(np.zeros((1, 64), np.float32))[0, predicted[chosen]]
    gap = np.abs(attributions.sum(axis=1) - (p - p0)).max()
    print(f"completeness: max |sum(attr) - (p(x) - p(blank))| = {gap:.1e}")

    plot(args.path, X, attributions, y_test[chosen], predicted[chosen], p[rows])
    print(f"wrote {args.path}")
    return args.path


if __name__ == "__main__":
    main()
