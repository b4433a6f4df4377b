"""Robustness at a cost of nothing: memory stays flat over 10^5 calls, and what the
input checks and conversions of the Python layer cost per call.

``Memory.track_rss_growth`` is the growth of the process's resident set (MiB, from
``/proc/self/statm``) over 10^5 calls of a small model, after a warm-up of 10^3; it
should be 0 (a leak of one small array per call would show as several MiB).
"""

import gc
import os

import numpy as np

import fastnn

CALLS = 100_000


def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _small_model(dtype="float32"):
    """A 20-32-4 classifier and a batch of 16, with labels and one-hot targets."""
    model = fastnn.MLP(
        [20, 32, 4], hidden="relu", loss="cross_entropy",
        optimizer=fastnn.Adam(lr=1e-3), dtype=dtype, seed=0,
    )  # fmt: skip
    rng = np.random.default_rng(0)
    X = rng.standard_normal((16, 20)).astype(dtype)
    labels = rng.integers(0, 4, 16)
    return model, X, labels, np.eye(4, dtype=dtype)[labels]


class Memory:
    """Resident-memory growth over 10^5 calls (MiB): should be 0."""

    params = [["train_step", "train_step_labels", "predict"]]
    param_names = ["call"]
    number = 1
    repeat = 1
    timeout = 600

    def setup(self, call):
        if not os.path.exists("/proc/self/statm"):
            raise NotImplementedError("needs /proc (Linux)")
        model, X, labels, Y = _small_model()
        self.fn = {
            "train_step": lambda: model.train_step(X, Y),
            "train_step_labels": lambda: model.train_step(X, labels),
            "predict": lambda: model.predict(X),
        }[call]
        for _ in range(1000):  # compile, fill the allocator's free lists
            self.fn()

    def track_rss_growth(self, call):
        fn = self.fn
        gc.collect()
        before = _rss_bytes()
        for _ in range(CALLS):
            fn()
        gc.collect()
        return (_rss_bytes() - before) / 2**20

    track_rss_growth.unit = "MiB"


class InputChecks:
    """``train_step`` and ``predict`` on a small model, by the kind of input: the
    ready fast path (C-contiguous float32, checked in compiled code), and inputs the
    Python layer must convert or copy first."""

    params = [["ready", "labels", "float64", "fortran", "strided", "list"]]
    param_names = ["input"]

    def setup(self, kind):
        self.model, X, labels, Y = _small_model()
        wide = np.zeros((16, 40), np.float32)
        wide[:, ::2] = X
        self.X, self.Y = {
            "ready": (X, Y),
            "labels": (X, labels),
            "float64": (X.astype(np.float64), Y.astype(np.float64)),
            "fortran": (np.asfortranarray(X), np.asfortranarray(Y)),
            "strided": (wide[:, ::2], Y),
            "list": (X.tolist(), labels.tolist()),
        }[kind]
        self.model.train_step(self.X, self.Y)  # compile outside the timing
        self.model.predict(self.X)

    def time_train_step(self, kind):
        self.model.train_step(self.X, self.Y)

    def time_predict(self, kind):
        self.model.predict(self.X)
