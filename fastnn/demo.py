"""``python -m fastnn demo``: train the primer's XOR network and show what happened."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

import numpy as np

import fastnn
from fastnn.training import History

X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
Y = np.array([[0], [1], [1], [0]], dtype=np.float32)


DESCRIPTION = (
    "Train the primer's XOR network (2 inputs, 4 sigmoid hidden units, 1 sigmoid "
    "output, MSE loss, full-batch SGD with momentum) and print the loss curve's "
    "summary, the predictions and the time taken."
)


def train_xor(
    epochs: int = 3000, lr: float = 2.0, seed: int = 0
) -> tuple[fastnn.MLP, History]:
    """A 2-4-1 sigmoid network, MSE, full-batch gradient descent on XOR.

    Returns the trained model and its History.
    """
    model = fastnn.MLP(
        [2, 4, 1],
        hidden="sigmoid",
        output="sigmoid",
        loss="mse",
        optimizer=fastnn.SGD(lr=lr, momentum=0.9),
        seed=seed,
    )
    history = model.fit(X, Y, epochs=epochs, batch_size=4, shuffle=False)
    return model, history


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m fastnn demo``; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m fastnn demo", description=DESCRIPTION
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=3000,
        help="full-batch training steps (default: %(default)s)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the initial weights (default: %(default)s)",
    )
    parser.add_argument(
        "--plot",
        metavar="PATH",
        help="also draw the loss curve into PATH (.png, .svg, ...; needs matplotlib)",
    )
    args = parser.parse_args(argv)

    start = time.perf_counter()
    train_xor(epochs=1, seed=args.seed)  # compiles, or loads from Numba's disk cache
    warmup = time.perf_counter() - start
    model, history = train_xor(epochs=args.epochs, seed=args.seed)

    print("XOR with a 2-4-1 sigmoid network, MSE loss, SGD (lr 2.0, momentum 0.9)")
    marks = sorted(
        {1, 10, 100, 1000, history.epochs} & set(range(1, history.epochs + 1))
    )
    print("loss: " + ", ".join(f"epoch {e}: {history.loss[e - 1]:.6f}" for e in marks))
    P = model.predict(X)[:, 0]
    for x, y, p in zip(X.astype(int), Y[:, 0].astype(int), P, strict=True):
        print(f"  {x[0]} xor {x[1]} = {y}   predicted {p:.4f} -> {int(p > 0.5)}")
    accuracy = float(np.mean((P > 0.5) == (Y[:, 0] > 0.5)))
    steps = history.epochs
    print(f"accuracy: {accuracy:.0%}")
    print(
        f"time: {history.seconds * 1e3:.1f} ms for {steps} training steps "
        f"({history.seconds / steps * 1e6:.2f} µs per step), after {warmup:.2f} s "
        "to compile or load the compiled code"
    )
    if args.plot:
        try:
            fastnn.plot_history(history, args.plot, title="XOR, 2-4-1 sigmoid network")
        except ImportError as err:
            print(f"cannot draw the loss curve: {err}", file=sys.stderr)
            return 1
        print(f"loss curve: {args.plot}")
    return 0 if accuracy == 1.0 else 1
