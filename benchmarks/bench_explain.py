"""Explanations: input gradients, gradient × input and integrated gradients.

The network is the digits one of ``examples/digits_explain.py`` (64-128-10, relu,
softmax), trained for a few epochs; the data are 1000 of scikit-learn's digits (random
pixels in [0, 1] of the same shape when scikit-learn is missing). Integrated gradients
take 50 steps, explaining the predicted class from a blank baseline.

``IntegratedGradientsVsTorch`` computes the same attributions with PyTorch autograd
(eager, ``torch.set_num_threads(1)``), two ways: all ``steps x n`` path points in one
batch (as Captum does by default) and a loop over the steps with the ``n`` samples
as the batch. Its ``setup`` checks that they agree with fastnn.

Run as a script for the side-by-side medians, one thread::

    python benchmarks/bench_explain.py
"""

import time

import numpy as np

import fastnn
from fastnn import explain

DTYPES = ["float32", "float64"]
METHODS = ["input_gradients", "gradient_x_input", "integrated_gradients"]
N_SAMPLES = 1000
STEPS = 50
SIZES = [64, 128, 10]


def digits(dtype, n=N_SAMPLES):
    """``n`` digits scaled to [0, 1] and their labels (random data without sklearn)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        rng = np.random.default_rng(0)
        return rng.random((n, 64)).astype(dtype), rng.integers(0, 10, n)
    data = load_digits()
    return (data.data[:n] / 16.0).astype(dtype), data.target[:n]


def digits_model(dtype, X, y, epochs=5):
    """The 64-128-10 relu/softmax network, trained a little on ``(X, y)``."""
    model = fastnn.MLP(SIZES, hidden="relu", output="softmax", loss="cross_entropy",
                       optimizer=fastnn.Adam(lr=1e-3), dtype=dtype, seed=0)  # fmt: skip
    model.fit(X, y, epochs=epochs, batch_size=64)
    return model


def torch_network(model):
    """The model's layers as torch tensors, and a function computing its output."""
    import torch
    import torch.nn.functional as F

    weights = [torch.from_numpy(W.copy()) for W in model.weights]
    biases = [torch.from_numpy(b.copy()) for b in model.biases]
    acts = [*model.hidden, model.output]
    funcs = {
        "identity": lambda z: z,
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "relu": torch.relu,
        "leaky_relu": lambda z: F.leaky_relu(z, 0.01),
        "softmax": lambda z: torch.softmax(z, dim=1),
    }

    def forward(A):
        for W, b, act in zip(weights, biases, acts, strict=True):
            A = funcs[act](torch.addmm(b, A, W))
        return A

    return forward


def torch_integrated_gradients(forward, X, baseline, target, steps, batched=True):
    """Integrated gradients with torch autograd, midpoint rule as fastnn's.

    ``X`` (n, n_in), ``baseline`` (1, n_in) tensors; ``target`` int64 tensor (n,).
    ``batched``: all path points in one forward/backward; else one per step.
    """
    import torch

    n, n_in = X.shape
    diff = X - baseline
    alphas = (torch.arange(steps, dtype=X.dtype) + 0.5) / steps
    if batched:
        path = (baseline + alphas[:, None, None] * diff).reshape(steps * n, n_in)
        path.requires_grad_(True)
        P = forward(path)
        chosen = P.gather(1, target.repeat(steps)[:, None]).sum()
        (grad,) = torch.autograd.grad(chosen, path)
        return diff * grad.reshape(steps, n, n_in).mean(dim=0)
    total = torch.zeros_like(X)
    for alpha in alphas:
        point = (baseline + alpha * diff).requires_grad_(True)
        chosen = forward(point).gather(1, target[:, None]).sum()
        (grad,) = torch.autograd.grad(chosen, point)
        total += grad
    return diff * total / steps


class Explain:
    """Each method of :mod:`fastnn.explain` on 1000 digits (targets: predicted)."""

    params = [METHODS, DTYPES]
    param_names = ["method", "dtype"]

    def setup(self, method, dtype):
        self.X, y = digits(dtype)
        self.model = digits_model(dtype, self.X, y)
        self.func = getattr(explain, method)
        self.kwargs = {"steps": STEPS} if method == "integrated_gradients" else {}
        self.func(self.model, self.X, **self.kwargs)  # compile outside the timing

    def time_explain(self, method, dtype):
        self.func(self.model, self.X, **self.kwargs)


class IntegratedGradientsVsTorch:
    """Integrated gradients, 50 steps, 1000 digits: fastnn against torch autograd."""

    params = [DTYPES]
    param_names = ["dtype"]

    def setup(self, dtype):
        try:
            import torch
        except ImportError as err:
            raise NotImplementedError("torch is not installed") from err
        torch.set_num_threads(1)
        self.X, y = digits(dtype)
        self.model = digits_model(dtype, self.X, y)
        self.target = self.model.predict(self.X).argmax(axis=1)
        self.forward = torch_network(self.model)
        self.Xt = torch.from_numpy(self.X)
        self.baseline = torch.zeros((1, self.X.shape[1]), dtype=self.Xt.dtype)
        self.target_t = torch.from_numpy(self.target.astype(np.int64))
        ours = self.time_fastnn(dtype)
        scale = float(np.abs(ours).max())
        tol = 1e-4 if dtype == "float32" else 1e-10
        for batched in (True, False):
            theirs = self.torch_ig(batched).numpy()
            if not np.allclose(ours, theirs, rtol=tol, atol=tol * scale):
                raise AssertionError(
                    f"fastnn and torch differ by {np.abs(ours - theirs).max():.2e}"
                )

    def torch_ig(self, batched):
        return torch_integrated_gradients(
            self.forward, self.Xt, self.baseline, self.target_t, STEPS, batched
        )

    def time_fastnn(self, dtype):
        return explain.integrated_gradients(
            self.model, self.X, steps=STEPS, target=self.target
        )

    def time_torch_batched(self, dtype):
        self.torch_ig(True)

    def time_torch_loop(self, dtype):
        self.torch_ig(False)


def main(repeat=21):
    """Print each way's median time, one thread, and fastnn's speed-up over the faster
    torch way. The three run in turn, ``repeat`` rounds, so that load on a shared
    machine falls on all of them alike; the speed-up is the median of the rounds'
    ratios."""
    import scipy.linalg.cython_blas  # noqa: F401  (the BLAS Numba's np.dot calls)
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    names = ("fastnn", "torch_batched", "torch_loop")
    for dtype in DTYPES:
        bench = IntegratedGradientsVsTorch()
        bench.setup(dtype)
        runs = {name: [] for name in names}
        for _ in range(repeat):
            for name in names:
                call = getattr(bench, f"time_{name}")
                start = time.perf_counter()
                call(dtype)
                runs[name].append(time.perf_counter() - start)
        times = {name: np.array(t) * 1e3 for name, t in runs.items()}
        torch_best = np.minimum(times["torch_batched"], times["torch_loop"])
        ratio = torch_best / times["fastnn"]
        line = ", ".join(f"{k} {np.median(v):.1f} ms" for k, v in times.items())
        print(
            f"{dtype}: IG {STEPS} steps x {N_SAMPLES} samples, medians of {repeat}: "
            f"{line}; torch (faster way) / fastnn = {np.median(ratio):.2f} "
            f"(rounds: {np.percentile(ratio, 25):.2f}-{np.percentile(ratio, 75):.2f})"
        )


if __name__ == "__main__":
    main()
