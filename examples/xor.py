"""The primer's XOR network with fastnn's model API: 2-4-1, sigmoid, MSE, SGD.

What was wrong in the primer's NumPy backward pass: it used variables it never defined,
and it chained the hidden layer's gradient wrongly. The hidden delta must be the output
delta sent back through the output weights, times the derivative of the hidden
activation at the hidden layer's own output: ``d1 = (d2 @ W2.T) * A1 * (1 - A1)``.
fastnn's ``dense_backward`` does this; see ``examples/xor_kernels.py`` for the kernels.
"""

import numpy as np

import fastnn

X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
y = np.array([0, 1, 1, 0])

model = fastnn.MLP([2, 4, 1], hidden="sigmoid", output="sigmoid", loss="mse",
                   optimizer=fastnn.SGD(lr=2.0, momentum=0.9), seed=0)  # fmt: skip
history = model.fit(X, y, epochs=3000, batch_size=4)

print(f"loss {history.loss[0]:.4f} -> {history.loss[-1]:.6f}")
print("predictions:", model.predict(X).ravel().round(3))
print("accuracy:", np.mean((model.predict(X).ravel() > 0.5) == y))
