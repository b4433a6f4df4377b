"""Measure where the BLAS path of the dense kernels starts to beat the fused loops.

Run: ``OPENBLAS_NUM_THREADS=1 python benchmarks/switch_point.py``. Prints, per shape
and dtype, the median time of forward + backward on each path and their ratio; the
switch in ``kernels/dense.py`` (``LOOP_MAX_ROWS``) is chosen from this table.
"""

import sys
import timeit

import numpy as np
from threadpoolctl import threadpool_limits

from fastnn import kernels as K

# (rows, n_in, n_out): a few rows at every width, then skinny, square and tall batches
SHAPES = [
    (1, 16, 16),
    (1, 128, 10),
    (1, 784, 128),
    (2, 784, 128),
    (4, 2, 4),
    (4, 4, 1),
    (4, 100, 100),
    (4, 512, 512),
    (8, 32, 32),
    (8, 100, 100),
    (16, 64, 64),
    (16, 256, 1),
    (32, 16, 16),
    (64, 32, 4),
    (64, 128, 10),
    (200, 8, 2),
    (200, 24, 8),
    (64, 784, 128),
    (256, 512, 512),
]


def step(forward, backward, X, W, b, out, d_out, grads, act):
    forward(X, W, b, act, out)
    backward(X, W, out, d_out, act, *grads)


def measure(n, n_in, n_out, dtype, act=K.RELU, repeat=7):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, n_in)).astype(dtype)
    W = (rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype(dtype)
    b = np.zeros(n_out, dtype)
    out = np.empty((n, n_out), dtype)
    d_out = np.ones((n, n_out), dtype)
    grads = (np.empty_like(W), np.empty_like(b), np.empty_like(X))
    times = {}
    for name, fwd, bwd in (
        ("loops", K.dense_forward_loops, K.dense_backward_loops),
        ("blas", K.dense_forward_blas, K.dense_backward_blas),
    ):
        args = (fwd, bwd, X, W, b, out, d_out, grads, act)
        step(*args)
        timer = timeit.Timer(lambda args=args: step(*args))
        number, _ = timer.autorange()
        times[name] = np.median(timer.repeat(repeat, number)) / number
    return times


def main():
    with threadpool_limits(1):
        for dtype in (np.float32, np.float64):
            print(f"{np.dtype(dtype).name}  forward+backward, median µs, 1 thread")
            header = ("shape", "MACs", "loops", "blas", "blas/loops")
            print(f"{header[0]:>16}" + "".join(f" {h:>10}" for h in header[1:]))
            for n, n_in, n_out in SHAPES:
                t = measure(n, n_in, n_out, dtype)
                print(
                    f"{f'{n}x{n_in}x{n_out}':>16} {n * n_in * n_out:>10} "
                    f"{t['loops'] * 1e6:>10.1f} {t['blas'] * 1e6:>10.1f} "
                    f"{t['blas'] / t['loops']:>10.2f}"
                )
            sys.stdout.flush()


if __name__ == "__main__":
    main()
