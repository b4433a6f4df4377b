"""``python -m fastnn bench --predict``: fastnn's ``predict`` against onnxruntime.

Each network is built by fastnn (seed 0) and exported with :func:`fastnn.onnx.to_onnx`,
so both peers run the very same weights on the same inputs. Columns:

``fastnn``       ``model.predict(X)``: the API, input validation included.
``onnxruntime``  ``session.run(None, {"input": X})`` on the exported graph, on the
                 CPU execution provider with ``intra_op_num_threads`` set to the
                 bench's thread count and ``inter_op_num_threads`` to 1.

Peers are timed in interleaved rounds, as the training steps are; a peer whose
package is not installed is reported as ``missing``. Both outputs are compared
once, and the largest relative difference is reported with the times.
"""

import statistics
import time
from dataclasses import dataclass

import numpy as np

import fastnn


@dataclass(frozen=True)
class PredictCase:
    """One network for the predict comparison."""

    sizes: tuple
    hidden: str
    output: str
    dtype: str

    @property
    def name(self):
        sizes = "-".join(map(str, self.sizes))
        return f"{sizes} {self.hidden}/{self.output} {self.dtype}"

    def model(self):
        """The fastnn model (seed 0: always the same weights)."""
        return fastnn.MLP(list(self.sizes), hidden=self.hidden, output=self.output,
                          dtype=self.dtype, seed=0)  # fmt: skip

    def data(self, batch, seed=1):
        """Standardized inputs ``X`` of shape (batch, n_in)."""
        rng = np.random.default_rng(seed)
        return rng.standard_normal((batch, self.sizes[0])).astype(self.dtype)


PREDICT_CASES = (
    PredictCase((784, 128, 10), "relu", "softmax", "float32"),
    PredictCase((64, 256, 256, 1), "tanh", "sigmoid", "float64"),
)
BATCHES = (1, 64, 1024)
PREDICT_PEERS = ("fastnn", "onnxruntime")
OPTIONAL = {"onnxruntime": ("onnxruntime", "onnx")}  # peer -> modules it needs


def fastnn_predict(model, X, threads):
    return lambda: model.predict(X)


def onnxruntime_predict(model, X, threads):
    """``session.run`` on ``model`` exported to ONNX, on ``threads`` threads."""
    import onnxruntime as ort

    from fastnn.onnx import to_onnx

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(
        to_onnx(model).SerializeToString(),
        options,
        providers=["CPUExecutionProvider"],
    )
    feed = {session.get_inputs()[0].name: X}
    return lambda: session.run(None, feed)[0]


BUILDERS = {"fastnn": fastnn_predict, "onnxruntime": onnxruntime_predict}


def import_onnxruntime():
    """Import onnxruntime if it is installed (the peer reports any failure)."""
    if _available(OPTIONAL["onnxruntime"]):
        try:
            import onnxruntime  # noqa: F401
        except Exception:
            pass


def _available(modules):
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in modules)


def time_predict(case, batch, threads, rounds, min_time, warmup, peers=PREDICT_PEERS):
    """Median microseconds per ``predict`` call of each peer, interleaved.

    Returns a JSON-ready dict: ``network``, ``batch``, ``us_per_call`` and
    ``status`` keyed by peer, and ``max_rel_diff``, the largest relative difference
    of a peer's output from fastnn's.
    """
    from fastnn.bench import _calibrate

    model, X = case.model(), case.data(batch)
    fns, status, diff = {}, {}, {}
    want = model.predict(X)
    for peer in peers:
        if not _available(OPTIONAL.get(peer, ())):
            status[peer] = "missing"
            continue
        try:
            fn = BUILDERS[peer](model, X, threads)
            got = fn()
            for _ in range(warmup):
                fn()
        except Exception as err:  # report and go on, as the step peers do
            if peer == "fastnn":
                raise
            status[peer] = f"error: {type(err).__name__}: {err}".splitlines()[0]
            continue
        scale = np.maximum(np.abs(want), np.finfo(want.dtype).tiny)
        diff[peer] = float(np.max(np.abs(got - want) / scale))
        fns[peer], status[peer] = fn, "ok"
    numbers = {p: _calibrate(fn, min_time) for p, fn in fns.items()}
    samples = {p: [] for p in fns}
    for _ in range(rounds):
        for peer, fn in fns.items():
            t0 = time.perf_counter()
            for _ in range(numbers[peer]):
                fn()
            samples[peer].append((time.perf_counter() - t0) / numbers[peer])
    return {
        "network": case.name,
        "batch": batch,
        "us_per_call": {p: statistics.median(s) * 1e6 for p, s in samples.items()},
        "status": status,
        "max_rel_diff": diff,
    }


def run_predict(threads, rounds, min_time, warmup):
    """:func:`time_predict` for every case of ``PREDICT_CASES`` and batch size of
    ``BATCHES``."""
    return [
        time_predict(case, batch, threads, rounds, min_time, warmup)
        for case in PREDICT_CASES
        for batch in BATCHES
    ]


def format_predict_table(results, threads, rounds):
    """The predict comparison as text; (×) = onnxruntime / fastnn time."""
    lines = [
        f"predict, {threads} thread(s), median µs per call over {rounds} rounds; "
        "(×) = onnxruntime / fastnn",
        f"{'network':<36}{'batch':>6}{'fastnn':>10}{'onnxruntime':>20}",
    ]
    for r in results:
        us, st = r["us_per_call"], r["status"]
        cells = [f"{r['network']:<36}{r['batch']:>6}{us['fastnn']:>10.1f}"]
        if "onnxruntime" in us:
            ratio = us["onnxruntime"] / us["fastnn"]
            cells.append(f"{us['onnxruntime']:>11.1f} ({ratio:5.2f}×)")
        else:
            cells.append(f"{st.get('onnxruntime', '-')[:19]:>20}")
        lines.append("".join(cells))
    return "\n".join(lines)
