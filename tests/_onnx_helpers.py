"""Shared by the ONNX tests: models, data, onnxruntime runs and the tolerances."""

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime")

import fastnn  # noqa: E402

HIDDEN = ["sigmoid", "tanh", "relu", "leaky_relu", "identity"]
OUTPUT = HIDDEN + ["softmax"]
# The bounds: onnxruntime's output against predict, relative. ``ATOL``,
# scaled by the largest output (see ``assert_matches``), lets through outputs that
# cancel to about zero (a relu just above 0 after batch normalization), which no
# relative bound can hold: their rounding error is that of the terms that cancelled.
RTOL = {np.float32: 1e-5, np.float64: 1e-10}
ATOL = {np.float32: 1e-7, np.float64: 1e-15}


def assert_matches(got, want):
    t = np.dtype(want.dtype).type
    scale = max(1.0, float(np.max(np.abs(want))))
    np.testing.assert_allclose(got, want, rtol=RTOL[t], atol=ATOL[t] * scale)


STANDARD_OPS = {"Gemm", "BatchNormalization", "Sigmoid", "Tanh", "Relu", "LeakyRelu",
                "PRelu", "Softmax"}  # fmt: skip


def run_ort(proto, X, output=None):
    """Run ``proto`` on one thread; the first output (or the one named)."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(
        proto.SerializeToString(), opts, providers=["CPUExecutionProvider"]
    )
    name = sess.get_inputs()[0].name
    return sess.run(None if output is None else [output], {name: X})[0]


def make_model(sizes, hidden, output, dtype, batch_norm=False, dropout=0.0, seed=0):
    """An MLP with random, non-trivial batch normalization parameters and stats."""
    model = fastnn.MLP(sizes, hidden=hidden, output=output, dtype=dtype, seed=seed,
                       batch_norm=batch_norm, dropout=dropout)  # fmt: skip
    rng = np.random.default_rng(seed + 1)
    for layer, (_, n_out, _, _, norm, stats) in enumerate(model.layout):
        model.biases[layer][...] = rng.normal(0, 0.3, n_out)
        if norm:
            gamma, beta = model.norm_params(layer)
            gamma[...] = rng.uniform(0.5, 2.0, n_out)
            beta[...] = rng.normal(0, 0.5, n_out)
            model.running_stats[stats : stats + n_out] = rng.normal(0, 0.5, n_out)
            model.running_stats[stats + n_out : stats + 2 * n_out] = rng.uniform(
                0.2, 3.0, n_out
            )
    return model


def data(model, n=17, seed=3):
    return (
        np.random.default_rng(seed)
        .normal(0, 2, (n, model.sizes[0]))
        .astype(model.dtype)
    )


def assert_matches_predict(model, proto):
    X = data(model)
    got, want = run_ort(proto, X), model.predict(X)
    assert got.dtype == want.dtype
    assert_matches(got, want)
