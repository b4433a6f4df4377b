"""Numerical parity with ``tests/reference.py``, tracked like a time.

For each case of ``fastnn.bench.CASES`` and each dtype, the model's output, loss and
gradients, and its parameters after a few optimizer steps, are compared with the
plain-NumPy reference run in float64 on the same (upcast) weights and data. Each
``track_`` returns the largest error relative to the largest reference value, so a
kernel change that loses precision shows up as a step in the same asv history as the
timings.
Typical values: ~1e-7 in float32, ~1e-16 in float64.
"""

import importlib.util
from pathlib import Path

import numpy as np

from fastnn.bench import CASES

DTYPES = ["float32", "float64"]
STEPS = 3  # optimizer steps compared in track_step_error


def load_reference():
    """``tests/reference.py``, loaded by path (asv runs benchmarks from the repo)."""
    path = Path(__file__).resolve().parents[1] / "tests" / "reference.py"
    spec = importlib.util.spec_from_file_location("fastnn_test_reference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def relative_error(comp, ref):
    """``max |comp - ref| / max |ref|`` over lists of arrays (or floats)."""
    comp = np.concatenate([np.ravel(c) for c in comp]).astype(np.float64)
    ref = np.concatenate([np.ravel(r) for r in ref])
    return float(np.max(np.abs(comp - ref)) / max(np.max(np.abs(ref)), 1e-300))


def reference_update(case, params, grads, state, t):
    """One SGD or Adam step on float64 lists, PyTorch's rules (as fastnn's)."""
    if case.optimizer == "sgd":
        return [p - case.lr * g for p, g in zip(params, grads, strict=True)]
    b1, b2, eps = 0.9, 0.999, 1e-8
    out = []
    for i, (p, g) in enumerate(zip(params, grads, strict=True)):
        m, v = state.get(i, (0.0, 0.0))
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        state[i] = (m, v)
        denom = np.sqrt(v) / np.sqrt(1 - b2**t) + eps
        out.append(p - case.lr / (1 - b1**t) * m / denom)
    return out


class Parity:
    """Errors of one fastnn model against the reference; unit: relative error."""

    params = [list(CASES), DTYPES]
    param_names = ["case", "dtype"]
    unit = "relative error"

    def setup(self, case, dtype):
        self.ref = load_reference()
        c = self.case = CASES[case]
        self.X, self.Y = c.data(dtype)
        self.model = c.model(dtype)
        self.acts = [c.hidden] * (len(c.sizes) - 2) + [c.output]
        self.weights = [w.astype(np.float64) for w in self.model.weights]
        self.biases = [b.astype(np.float64) for b in self.model.biases]
        self.X64, self.Y64 = self.X.astype(np.float64), self.Y.astype(np.float64)

    def track_predict_error(self, case, dtype):
        P = self.model.predict(self.X)
        ref = self.ref.mlp_forward(self.X64, self.weights, self.biases, self.acts)
        return relative_error([P], [ref[-1]])

    def track_loss_error(self, case, dtype):
        value = self.model.loss(self.X, self.Y)
        ref, _, _ = self.ref.mlp_loss_and_gradients(
            self.X64, self.Y64, self.weights, self.biases, self.acts, self.case.loss
        )
        return abs(value - ref) / max(abs(ref), 1e-300)

    def track_gradient_error(self, case, dtype):
        _, dW, db = self.model.gradients(self.X, self.Y)
        _, ref_dW, ref_db = self.ref.mlp_loss_and_gradients(
            self.X64, self.Y64, self.weights, self.biases, self.acts, self.case.loss
        )
        return relative_error(dW + db, ref_dW + ref_db)

    def track_step_error(self, case, dtype):
        model = self.case.model(self.model.dtype)  # fresh: the same initial weights
        n = len(self.weights)
        params, state = self.weights + self.biases, {}
        for t in range(1, STEPS + 1):
            model.train_step(self.X, self.Y)
            _, dW, db = self.ref.mlp_loss_and_gradients(
                self.X64, self.Y64, params[:n], params[n:], self.acts, self.case.loss
            )
            params = reference_update(self.case, params, dW + db, state, t)
        return relative_error(model.weights + model.biases, params)
