"""fastnn next to scikit-learn on real data: the 8×8 digits bundled with scikit-learn.

Both sides train the same network through the same estimator API and parameters:
64-128-10 (relu hidden layer, softmax output, cross-entropy), Adam with learning rate
1e-3, batches of 64, L2 ``alpha=1e-4``, 50 epochs (``tol=0`` and
``n_iter_no_change=epochs``, so neither stops early), pixels scaled to [0, 1] by
``X / 16``, the same stratified 80/20 split. ``fastnn.sklearn.MLPClassifier`` takes
``sklearn.neural_network.MLPClassifier``'s parameters, so one dict of them builds
both. Fit times are the best of ``--repeats`` fits, after one fit that compiles
fastnn's kernels (or loads them from Numba's disk cache).

    OPENBLAS_NUM_THREADS=1 python examples/digits.py [--epochs 50] [--float32]

Needs scikit-learn.
"""

import argparse
import time
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier as SklearnMLP

from fastnn.sklearn import MLPClassifier as FastnnMLP


def load_data(dtype=np.float64, seed=0):
    """Digits scaled to [0, 1]; a stratified 80/20 train/test split."""
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(dtype)
    return train_test_split(X, y, test_size=0.2, stratify=y, random_state=seed)


def settings(epochs=50, seed=0):
    """The one set of estimator parameters both libraries get."""
    return dict(
        hidden_layer_sizes=(128,),
        activation="relu",
        solver="adam",
        alpha=1e-4,
        batch_size=64,
        learning_rate_init=1e-3,
        max_iter=epochs,
        tol=0.0,
        n_iter_no_change=epochs,
        random_state=seed,
    )


def timed_fit(estimator, X, y, repeats):
    """Fit ``repeats`` times; returns the estimator and the best wall time."""
    best = np.inf
    for _ in range(repeats):
        with warnings.catch_warnings():  # max_iter is reached on purpose
            warnings.simplefilter("ignore", ConvergenceWarning)
            start = time.perf_counter()
            estimator.fit(X, y)
            best = min(best, time.perf_counter() - start)
    return estimator, best


def compare(epochs=50, repeats=3, dtype=np.float64, seed=0):
    """Train both; returns {"fastnn": {...}, "sklearn": {...}} with each one's
    ``accuracy`` on the test set, ``seconds`` to fit and ``epochs`` run."""
    X_train, X_test, y_train, y_test = load_data(dtype, seed)
    params = settings(epochs, seed)
    timed_fit(FastnnMLP(**{**params, "max_iter": 1}), X_train, y_train, 1)  # compile
    results = {}
    for name, cls in (("fastnn", FastnnMLP), ("sklearn", SklearnMLP)):
        estimator, seconds = timed_fit(cls(**params), X_train, y_train, repeats)
        results[name] = {
            "accuracy": float(estimator.score(X_test, y_test)),
            "seconds": seconds,
            "epochs": estimator.n_iter_,
        }
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--float32", action="store_true", help="float32 inputs")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    dtype = np.float32 if args.float32 else np.float64
    results = compare(args.epochs, args.repeats, dtype, args.seed)
    print(
        f"digits, 64-128-10 relu/softmax, Adam 1e-3, batch 64, {args.epochs} epochs, "
        f"{np.dtype(dtype).name} inputs"
    )
    for name, r in results.items():
        ms = r["seconds"] * 1e3
        print(
            f"  {name:<8} test accuracy {r['accuracy']:.4f}   fit {ms:7.1f} ms "
            f"({ms / r['epochs']:.2f} ms per epoch)"
        )
    ratio = results["sklearn"]["seconds"] / results["fastnn"]["seconds"]
    print(f"  fastnn fits {ratio:.1f}x faster than scikit-learn")
    return results


if __name__ == "__main__":
    main()
