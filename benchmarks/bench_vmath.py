"""Activation epilogues on one row, with ``kernels.vmath``'s exp, sigmoid and tanh.

``bias_activation_row`` is the epilogue every dense layer runs on each output row
(``row = act(row + b)``). Sigmoid, tanh and softmax take their exponentials from
``kernels.vmath``, which LLVM vectorizes; identity is the floor (one add per element)
they are compared against. Row lengths: 8 (SimpleChains' 24-8-2 hidden layer), 128
(mnist64's hidden layer) and 1024 (a wide layer).
"""

import numpy as np

from fastnn.kernels import activations

ACTIVATIONS = ["identity", "sigmoid", "tanh", "softmax"]
DTYPES = ["float32", "float64"]
LENGTHS = [8, 128, 1024]


class Epilogue:
    """``bias_activation_row(row, b, act)`` on one row, in place.

    The row is first restored from a copy (``np.copyto``, included in the time), so
    every call sees the same pre-activations in [-5, 5] instead of its own output.
    """

    params = [ACTIVATIONS, DTYPES, LENGTHS]
    param_names = ["activation", "dtype", "n"]

    def setup(self, activation, dtype, n):
        rng = np.random.default_rng(0)
        self.act = activations.ACTIVATIONS[activation]
        self.z = rng.uniform(-5.0, 5.0, n).astype(dtype)
        self.b = (0.1 * rng.standard_normal(n)).astype(dtype)
        self.row = self.z.copy()
        self.run()  # compiles (or loads from the cache) outside the timing

    def run(self):
        np.copyto(self.row, self.z)
        activations.bias_activation_row(self.row, self.b, self.act)

    def time_bias_activation_row(self, activation, dtype, n):
        self.run()
