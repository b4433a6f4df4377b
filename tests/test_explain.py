"""``fastnn.explain``: input gradients, gradient × input, integrated gradients.

The reference (tests/reference.py) is checked against central differences first; the
compiled methods are then held to it and to central differences of ``model.predict``,
for every hidden and output activation, in float32 and float64. Integrated gradients
are checked for completeness. Bad input is in ``test_explain_bad_input.py``.
"""

import importlib.util
import textwrap
from pathlib import Path

import numpy as np
import pytest

import fastnn
from fastnn import explain

import reference
from _explain_helpers import IG_STEPS, METHODS, SIZES, call, data, make_model
from conftest import TOL, assert_close, run_with_allocation_stats, tolerance

HIDDEN = ["sigmoid", "tanh", "relu", "leaky_relu", "identity"]
OUTPUTS = ["identity", "sigmoid", "softmax", "tanh"]
EPS = 1e-6  # central differences, float64
ROOT = Path(__file__).resolve().parents[1]


def ref_args(model):
    """Weights, biases and activations of ``model`` in float64, for the reference."""
    return (
        [W.astype(np.float64) for W in model.weights],
        [b.astype(np.float64) for b in model.biases],
        [*model.hidden, model.output],
    )


def ref_method(method, model, X, target, baseline=None, steps=IG_STEPS):
    X = X.astype(np.float64)
    args = ref_args(model)
    if method == "integrated_gradients":
        base = np.zeros(X.shape[1]) if baseline is None else baseline
        return reference.integrated_gradients(X, *args, target, base, steps)
    return getattr(reference, method.replace("input_gradients", "input_gradient"))(
        X, *args, target
    )


def central_differences(f, X, target, eps=EPS):
    """``d f(X)[i, target[i]] / d X[i, k]`` by central differences, all at once."""
    n, n_in = X.shape
    shifts = eps * np.eye(n_in)[:, None, :]  # (n_in, 1, n_in)
    plus = f((X + shifts).reshape(-1, n_in)).reshape(n_in, n, -1)
    minus = f((X - shifts).reshape(-1, n_in)).reshape(n_in, n, -1)
    rows = np.arange(n)
    return ((plus[:, rows, target] - minus[:, rows, target]) / (2 * eps)).T


# -- the reference, then the compiled methods, against finite differences --------------


@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("hidden", HIDDEN)
def test_reference_matches_finite_differences(hidden, output, rng):
    model = make_model(hidden, output)
    X = data(rng)
    args = ref_args(model)
    target = rng.integers(0, SIZES[-1], X.shape[0])
    fd = central_differences(lambda A: reference.mlp_forward(A, *args)[-1], X, target)
    grad = reference.input_gradient(X, *args, target)
    np.testing.assert_allclose(grad, fd, **TOL["fd_inputs"])


@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("hidden", HIDDEN)
def test_input_gradients_match_finite_differences_of_predict(hidden, output, rng):
    model = make_model(hidden, output)
    X = data(rng)
    target = model.predict(X).argmax(axis=1)  # what target=None explains
    fd = central_differences(model.predict, X, target)
    np.testing.assert_allclose(
        explain.input_gradients(model, X), fd, **TOL["fd_inputs"]
    )


@pytest.mark.parametrize("output", ["identity", "sigmoid", "tanh"])
def test_one_output_model_matches_finite_differences(output, rng):
    model = make_model("tanh", output, sizes=[4, 5, 1])
    X = data(rng, n_in=4)
    fd = central_differences(model.predict, X, np.zeros(X.shape[0], np.int64))
    np.testing.assert_allclose(
        explain.input_gradients(model, X), fd, **TOL["fd_inputs"]
    )


# -- the compiled methods against the reference ----------------------------------------


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("hidden", HIDDEN)
def test_matches_reference(method, hidden, output, dtype, rng):
    model = make_model(hidden, output, dtype)
    X = data(rng, n=9, dtype=dtype)
    target = rng.integers(0, SIZES[-1], X.shape[0])
    comp = call(method, model, X, target)
    assert comp.dtype == dtype and comp.shape == X.shape
    assert_close(comp, ref_method(method, model, X, target), dtype)


# (sizes, n_samples): edge cases and shapes on both sides of the BLAS switch.
SHAPES = {
    "batch_of_one": ([5, 7, 3], 1),
    "one_feature": ([1, 6, 3], 8),
    "one_output": ([5, 6, 1], 8),
    "one_layer": ([5, 3], 4),
    "deep": ([6, 8, 8, 8, 8, 4], 5),
    "wide": ([300, 200, 10], 7),
    "tall_many_blocks": ([8, 16, 4], 3 * explain.BLOCK_ROWS + 5),
}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("shape", list(SHAPES))
def test_shapes(shape, method, dtype, rng):
    sizes, n = SHAPES[shape]
    model = make_model("tanh", "softmax" if sizes[-1] > 1 else "sigmoid", dtype, sizes)
    X = data(rng, n=n, n_in=sizes[0], dtype=dtype)
    target = model.predict(X).argmax(axis=1)
    comp = call(method, model, X)  # target=None: the predicted unit
    assert comp.dtype == dtype and comp.shape == X.shape
    assert_close(comp, ref_method(method, model, X, target), dtype)


@pytest.mark.parametrize("method", METHODS)
def test_non_contiguous_and_fortran_input(method, dtype, rng):
    model = make_model("relu", "softmax", dtype)
    big = data(rng, n=20, n_in=3 * SIZES[0], dtype=dtype)
    X = big[::2, ::3]
    expected = call(method, model, np.ascontiguousarray(X))
    np.testing.assert_array_equal(call(method, model, X), expected)
    np.testing.assert_array_equal(call(method, model, np.asfortranarray(X)), expected)


@pytest.mark.parametrize("method", METHODS)
def test_blocks_do_not_change_the_result(method, monkeypatch, rng):
    model = make_model("tanh", "softmax")
    X = data(rng, n=11)
    baseline = data(rng, n=11)  # one per row: indexed across blocks
    kwargs = {"baseline": baseline} if method == "integrated_gradients" else {}
    whole = call(method, model, X, **kwargs)
    monkeypatch.setattr(explain, "BLOCK_ROWS", 3)
    np.testing.assert_allclose(
        call(method, model, X, **kwargs), whole, **TOL["reordered"]
    )


# -- targets ---------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_target_forms(method, rng):
    model = make_model("tanh", "softmax")
    X = data(rng, n=7)
    predicted = model.predict(X).argmax(axis=1)
    by_row = call(method, model, X, predicted)
    np.testing.assert_array_equal(call(method, model, X), by_row)
    for unit in (0, np.int32(2)):
        np.testing.assert_array_equal(
            call(method, model, X, unit),
            call(method, model, X, np.full(X.shape[0], unit, np.uint8)),
        )
    assert_close(
        call(method, model, X, [2, 0, 1, 2, 0, 1, 2]),
        ref_method(method, model, X, np.array([2, 0, 1, 2, 0, 1, 2])),
        np.float64,
    )


def test_target_none_for_one_output_and_target_not_modified(rng):
    model = make_model("sigmoid", "sigmoid", sizes=[4, 5, 1])
    X = data(rng, n_in=4)
    np.testing.assert_array_equal(
        explain.input_gradients(model, X), explain.input_gradients(model, X, target=0)
    )
    target = np.array([2, 0, 1, 1, 0, 2])
    explain.integrated_gradients(make_model(), data(rng), target=target)
    np.testing.assert_array_equal(target, [2, 0, 1, 1, 0, 2])


# -- gradient × input and integrated gradients -----------------------------------------


def test_gradient_x_input_is_x_times_gradient(dtype, rng):
    model = make_model("leaky_relu", "softmax", dtype)
    X = data(rng, dtype=dtype)
    np.testing.assert_array_equal(
        explain.gradient_x_input(model, X), X * explain.input_gradients(model, X)
    )


@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("hidden", ["tanh", "sigmoid"])
def test_integrated_gradients_completeness(hidden, output, dtype, rng):
    model = make_model(hidden, output, dtype)
    X = data(rng, dtype=dtype)
    baseline = 0.5 * data(rng, n=1, dtype=dtype)[0]
    target = rng.integers(0, SIZES[-1], X.shape[0])
    attr = explain.integrated_gradients(model, X, baseline, steps=200, target=target)
    rows = np.arange(X.shape[0])
    gap = (
        model.predict(X)[rows, target] - model.predict(baseline[None])[0, target]
    ).astype(np.float64)
    err = np.abs(attr.sum(axis=1, dtype=np.float64) - gap)
    assert err.max() < tolerance(dtype, "ig_completeness")["atol"], (err, gap)


def test_integrated_gradients_midpoint_rule_converges_quadratically(rng):
    model = make_model("tanh", "softmax")
    for W in model.weights:
        W *= 3  # curvature along the path, so the rule's error is well above rounding
    X = data(rng, n=20)
    target = model.predict(X).argmax(axis=1)
    gap = (
        model.predict(X)[np.arange(20), target]
        - model.predict(np.zeros((1, 5)))[0, target]
    )

    def error(steps):
        attr = explain.integrated_gradients(model, X, steps=steps, target=target)
        return np.abs(attr.sum(axis=1) - gap).max()

    # 1/steps**2: doubling the steps quarters the error (a left sum would halve it)
    assert 3.0 < error(20) / error(40) < 5.0


def test_integrated_gradients_with_one_step_is_midpoint_gradient(rng):
    model = make_model("relu", "sigmoid")
    X, baseline = data(rng), data(rng)
    midpoint = explain.input_gradients(model, (X + baseline) / 2, target=1)
    np.testing.assert_allclose(
        explain.integrated_gradients(model, X, baseline, steps=1, target=1),
        (X - baseline) * midpoint,
        **TOL["one_update"],
    )


def test_baseline_forms(dtype, rng):
    model = make_model("sigmoid", "softmax", dtype)
    X = data(rng, dtype=dtype)
    n, n_in = X.shape
    zero = explain.integrated_gradients(model, X)
    for baseline in (np.zeros(n_in), np.zeros((1, n_in)), np.zeros((n, n_in), int)):
        np.testing.assert_array_equal(
            explain.integrated_gradients(model, X, baseline), zero
        )
    per_row = data(rng, dtype=dtype)
    assert_close(
        explain.integrated_gradients(model, X, per_row, steps=IG_STEPS),
        ref_method(
            "integrated_gradients", model, X, model.predict(X).argmax(1), per_row
        ),
        dtype,
    )
    # A feature equal to its baseline gets no attribution.
    X[:, 2] = 0
    assert not explain.integrated_gradients(model, X)[:, 2].any()


def test_dtype_follows_the_model(rng):
    X64 = data(rng)
    for dtype in (np.float32, np.float64):
        model = make_model(dtype=dtype)
        for method in METHODS:
            assert call(method, model, X64).dtype == dtype
            assert call(method, model, X64.astype(np.float32)).dtype == dtype
            assert call(method, model, (X64 > 0).astype(int)).dtype == dtype


def batch_norm_model(dtype, rng, hidden="tanh"):
    """Batch norm on the first hidden layer, dropout on both, with running statistics
    and gamma/beta away from their initial values."""
    model = fastnn.MLP(SIZES, hidden=hidden, output="softmax", batch_norm=[True, False],
                       dropout=0.3, dtype=dtype, seed=0)  # fmt: skip
    n_out = SIZES[1]
    gamma, beta = model.norm_params(0)
    gamma[...] = rng.uniform(0.5, 2.0, n_out)
    beta[...] = rng.normal(0.0, 0.5, n_out)
    so = model.layout[0, 5]
    model.running_stats[so : so + n_out] = rng.normal(0.0, 0.5, n_out)
    model.running_stats[so + n_out : so + 2 * n_out] = rng.uniform(0.5, 2.0, n_out)
    return model


def folded_ref_args(model):
    """The batch-normalized model as plain layers (inference: an affine map per unit),
    for the reference: ``W * scale``, ``(b - mean) * scale + beta``."""
    weights, biases, acts = ref_args(model)
    n_out = SIZES[1]
    so = model.layout[0, 5]
    mean = model.running_stats[so : so + n_out].astype(np.float64)
    var = model.running_stats[so + n_out : so + 2 * n_out].astype(np.float64)
    gamma, beta = (p.astype(np.float64) for p in model.norm_params(0))
    scale = gamma / np.sqrt(var + model.config[0, 2])
    weights[0] = weights[0] * scale
    biases[0] = (biases[0] - mean) * scale + beta
    return weights, biases, acts


@pytest.mark.parametrize("hidden", ["tanh", "relu"])
def test_batch_norm_and_dropout_explain_predict(hidden, rng):
    """Inference behaviour, as predict: running statistics, no dropout, also when the
    model is in training mode."""
    model = batch_norm_model(np.float64, rng, hidden)
    assert model.training
    X = data(rng)
    target = model.predict(X).argmax(axis=1)
    fd = central_differences(model.predict, X, target)
    grad = explain.input_gradients(model, X)
    np.testing.assert_allclose(grad, fd, **TOL["fd_inputs"])
    np.testing.assert_allclose(
        reference.input_gradient(X, *folded_ref_args(model), target), fd,
        **TOL["fd_inputs"],
    )  # fmt: skip


@pytest.mark.parametrize("method", METHODS)
def test_batch_norm_matches_reference(method, dtype, rng):
    model = batch_norm_model(dtype, rng)
    X = data(rng, n=9, dtype=dtype)
    target = rng.integers(0, SIZES[-1], X.shape[0])
    args = folded_ref_args(model)
    X64 = X.astype(np.float64)
    if method == "integrated_gradients":
        ref = reference.integrated_gradients(
            X64, *args, target, np.zeros(SIZES[0]), IG_STEPS
        )
    else:
        ref = getattr(reference, method.replace("input_gradients", "input_gradient"))(
            X64, *args, target
        )
    assert_close(call(method, model, X, target), ref, dtype)


def test_estimator_with_model_attribute(rng):
    class Fitted:
        pass

    model = make_model()
    estimator = Fitted()
    estimator.model_ = model
    X = data(rng)
    for method in METHODS:
        np.testing.assert_array_equal(
            call(method, estimator, X), call(method, model, X)
        )


# -- the kernels allocate nothing per step or per block --------------------------------

ALLOCATION_SCRIPT = textwrap.dedent(
    """
    import numpy as np
    from numba.core.runtime import rtsys

    import fastnn
    from fastnn.kernels import explain as kexplain

    def count(call):
        before = rtsys.get_allocation_stats()
        call()
        after = rtsys.get_allocation_stats()
        assert after.alloc - before.alloc == after.free - before.free, "leak"
        return after.alloc - before.alloc

    for dtype in ("float32", "float64"):
        model = fastnn.MLP([20, 64, 32, 5], hidden="tanh", output="softmax",
                           batch_norm=[True, False], dtype=dtype, seed=0)
        X = np.random.default_rng(0).standard_normal((40, 20)).astype(dtype)
        base = np.zeros((1, 20), dtype)
        out = np.empty_like(X)
        counts = {}
        for rows in (40, 7):  # one block, several
            work = np.empty(kexplain.workspace_size(model.layout, rows), dtype)
            for steps in (1, 30):
                target = np.full(40, -1, np.int64)
                def ig():
                    kexplain.integrated_gradients(model.network, X, base, target,
                                                  steps, work, out)
                ig()  # compile
                counts["ig", rows, steps] = count(ig)
            def grad():
                kexplain.input_gradients(model.network, X, target, work, out)
            grad()
            counts["grad", rows] = count(grad)
        print(dtype, counts)
        ig_counts = {v for k, v in counts.items() if k[0] == "ig"}
        grad_counts = {v for k, v in counts.items() if k[0] == "grad"}
        assert len(ig_counts) == 1 and len(grad_counts) == 1, counts
    print("flat")
    """
)


def test_kernels_allocate_nothing_per_step_or_block():
    assert "flat" in run_with_allocation_stats(ALLOCATION_SCRIPT)


# -- the example -----------------------------------------------------------------------


def test_digits_example_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    pytest.importorskip("sklearn")
    spec = importlib.util.spec_from_file_location(
        "digits_explain", ROOT / "examples" / "digits_explain.py"
    )
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    path = tmp_path / "digits.png"
    assert example.main([str(path), "--epochs", "2", "--steps", "10"]) == str(path)
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000
