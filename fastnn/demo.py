"""``python -m fastnn demo``: train the primer's XOR network and show what happened."""

import argparse
import sys
import time

import numpy as np

import fastnn

X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
Y = np.array([[0], [1], [1], [0]], dtype=np.float32)


def train_xor(epochs=3000, lr=2.0, seed=0):
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


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m fastnn demo", description=__doc__)
    parser.add_argument("--epochs", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
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
