"""Dense-layer kernels: ``dense_forward`` and ``dense_backward``.

Shapes (``n_samples x n_in x n_out``) lie on both sides of the switch between the
fused loops and BLAS plus one fused pass (``fastnn.kernels.LOOP_MAX_ROWS``; it was
``BLAS_MIN_MACS``, 4096 multiply-adds, when these were written); most are layers of
the networks of ``fastnn.bench.CASES``. The ids are fixed shapes rather than
"just below / above the switch", so each one's history stays comparable when the
switch point moves.
"""

import numpy as np

from fastnn import kernels as K

ACTIVATIONS = list(K.ACTIVATIONS)
DTYPES = ["float32", "float64"]
SHAPES = {
    "4x2x4": (4, 2, 4),  # loops: XOR's hidden layer
    "4x31x32": (4, 31, 32),  # loops
    "4x32x32": (4, 32, 32),  # loops
    "4x100x100": (4, 100, 100),  # loops: tiny100's layers
    "1x784x128": (1, 784, 128),  # loops: a batch of one, online1's hidden layer
    "64x784x128": (64, 784, 128),  # BLAS: mnist64's hidden layer
}


class _Layer:
    """Data for one dense layer; ``setup`` runs each kernel once (JIT compile)."""

    params = [ACTIVATIONS, DTYPES, list(SHAPES)]
    param_names = ["activation", "dtype", "shape"]

    def setup(self, activation, dtype, shape):
        n, n_in, n_out = SHAPES[shape]
        rng = np.random.default_rng(0)
        self.act = K.ACTIVATIONS[activation]
        self.X = rng.standard_normal((n, n_in)).astype(dtype)
        self.W = (rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype(dtype)
        self.b = (0.1 * rng.standard_normal(n_out)).astype(dtype)
        self.out = np.empty((n, n_out), dtype)
        self.d_out0 = rng.standard_normal((n, n_out)).astype(dtype)
        self.d_out = self.d_out0.copy()
        self.dW = np.empty_like(self.W)
        self.db = np.empty_like(self.b)
        self.dX = np.empty_like(self.X)
        self.forward()  # compiles (or loads from the cache) outside the timing
        self.backward()

    def forward(self):
        K.dense_forward(self.X, self.W, self.b, self.act, self.out)

    def backward(self):
        np.copyto(self.d_out, self.d_out0)
        K.dense_backward(
            self.X, self.W, self.out, self.d_out, self.act, self.dW, self.db, self.dX
        )


class DenseForward(_Layer):
    """``out[:] = act(X @ W + b)`` into a preallocated ``out``."""

    def time_dense_forward(self, activation, dtype, shape):
        self.forward()


class DenseBackward(_Layer):
    """dL/dZ, ``dW``, ``db`` and ``dX`` of one layer.

    ``dense_backward`` overwrites ``d_out`` with dL/dZ, so each call first restores
    it (``np.copyto``, included in the time): repeated in place, sigmoid and tanh
    derivatives would shrink it into subnormal numbers and time those instead.
    """

    def time_dense_backward(self, activation, dtype, shape):
        self.backward()
