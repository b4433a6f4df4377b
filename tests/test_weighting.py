"""Weight decay (SGD, Adam, AdamW) and per-sample loss weights."""

import numpy as np
import pytest

import fastnn

import reference
from conftest import TOL, tolerance


def _model(optimizer, dtype="float64", loss="cross_entropy", seed=0):
    return fastnn.MLP([4, 6, 3], hidden="tanh", loss=loss, optimizer=optimizer,
                      dtype=dtype, seed=seed)  # fmt: skip


def _decay_mask(model):
    """1 for weights, 0 for biases, laid out like ``model.params``."""
    mask = np.zeros(model.n_params)
    for n_in, n_out, off, *_ in model.layout:
        mask[off : off + n_in * n_out] = 1
    return mask


@pytest.mark.parametrize("decay_bias", [True, False])
@pytest.mark.parametrize("kind", ["sgd", "momentum", "nesterov", "adam", "adamw"])
def test_weight_decay_follows_pytorch_rules(rng, kind, decay_bias):
    wd, lr = 0.1, 0.05
    make = {
        "sgd": lambda: fastnn.SGD(lr, weight_decay=wd, decay_bias=decay_bias),
        "momentum": lambda: fastnn.SGD(lr, 0.9, weight_decay=wd, decay_bias=decay_bias),
        "nesterov": lambda: fastnn.SGD(
            lr, 0.9, nesterov=True, weight_decay=wd, decay_bias=decay_bias
        ),
        "adam": lambda: fastnn.Adam(lr, weight_decay=wd, decay_bias=decay_bias),
        "adamw": lambda: fastnn.AdamW(lr, weight_decay=wd, decay_bias=decay_bias),
    }[kind]
    model = _model(make())
    X = rng.standard_normal((5, 4))
    y = rng.integers(0, 3, 5)
    wd_vec = wd * (np.ones(model.n_params) if decay_bias else _decay_mask(model))
    p = model.params.copy()
    buf = m = v = None
    m, v = np.zeros_like(p), np.zeros_like(p)
    for t in range(1, 4):
        _, dW, db = model.gradients(X, y)
        g = np.concatenate(
            [a.ravel() for pair in zip(dW, db, strict=True) for a in pair]
        )
        model.train_step(X, y)
        if kind in ("sgd", "momentum", "nesterov"):
            momentum = 0.0 if kind == "sgd" else 0.9
            p, buf = reference.sgd_step(p, g + wd_vec * p, buf, lr, momentum,
                                        kind == "nesterov")  # fmt: skip
        elif kind == "adam":
            p, m, v = reference.adam_step(p, g + wd_vec * p, m, v, t, lr, 0.9, 0.999,
                                          1e-8)  # fmt: skip
        else:
            p = p * (1 - lr * wd_vec)
            p, m, v = reference.adam_step(p, g, m, v, t, lr, 0.9, 0.999, 1e-8)
        np.testing.assert_allclose(model.params, p, **TOL["decayed_updates"])


def test_adamw_and_sgd_decay_match_torch(rng):
    torch = pytest.importorskip("torch")
    for make, torch_make in [
        (lambda: fastnn.AdamW(0.01, weight_decay=0.1),
         lambda ps: torch.optim.AdamW(ps, lr=0.01, weight_decay=0.1)),
        (lambda: fastnn.SGD(0.05, 0.9, weight_decay=0.1),
         lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, weight_decay=0.1)),
        (lambda: fastnn.Adam(0.01, weight_decay=0.1),
         lambda ps: torch.optim.Adam(ps, lr=0.01, weight_decay=0.1)),
    ]:  # fmt: skip
        model = _model(make(), loss="mse", seed=1)
        X = rng.standard_normal((5, 4))
        Y = rng.standard_normal((5, 3))
        tw = [torch.tensor(a, requires_grad=True) for pair in
              zip(model.weights, model.biases, strict=True) for a in pair]  # fmt: skip
        opt = torch_make(tw)
        for _ in range(3):
            model.train_step(X, Y)
            opt.zero_grad()
            h = torch.tanh(torch.from_numpy(X) @ tw[0] + tw[1])
            loss = torch.mean((h @ tw[2] + tw[3] - torch.from_numpy(Y)) ** 2)
            loss.backward()
            opt.step()
        ours = [
            a for pair in zip(model.weights, model.biases, strict=True) for a in pair
        ]
        for a, b in zip(ours, tw, strict=True):
            np.testing.assert_allclose(a, b.detach().numpy(), **TOL["torch_outputs"])


def test_bad_weight_decay_is_refused():
    with pytest.raises(ValueError, match="weight_decay"):
        fastnn.Adam(weight_decay=-1.0)
    with pytest.raises(TypeError, match="decay_bias"):
        fastnn.SGD(decay_bias="yes")


@pytest.mark.parametrize("loss", ["mse", "bce", "cross_entropy"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sample_weight_is_a_weighted_average(rng, loss, dtype):
    model = _model("sgd", dtype=dtype, loss=loss)
    X = rng.standard_normal((6, 4))
    Y = rng.random((6, 3)) if loss != "cross_entropy" else rng.integers(0, 3, 6)
    w = np.array([0.5, 2.0, 0.0, 1.0, 3.0, 1.5])
    rows = [model.gradients(X[i : i + 1], Y[i : i + 1]) for i in range(6)]
    expect_loss = np.average([r[0] for r in rows], weights=w)
    loss_w, dW, db = model.gradients(X, Y, sample_weight=w)
    tol = tolerance(dtype, "weighted_loss")
    np.testing.assert_allclose(loss_w, expect_loss, **tol)
    np.testing.assert_allclose(model.loss(X, Y, sample_weight=w), loss_w, **tol)
    for layer in range(2):
        expect = sum(wi * r[1][layer] for wi, r in zip(w, rows, strict=True)) / w.sum()
        np.testing.assert_allclose(
            dW[layer], expect, **tolerance(dtype, "weighted_average_gradient")
        )


def test_integer_weights_equal_repeated_rows(rng):
    model = _model("sgd")
    X = rng.standard_normal((4, 4))
    y = rng.integers(0, 3, 4)
    counts = np.array([1, 3, 0, 2])
    loss_w, dW_w, _ = model.gradients(X, y, sample_weight=counts)
    loss_r, dW_r, _ = model.gradients(np.repeat(X, counts, 0), np.repeat(y, counts))
    np.testing.assert_allclose(loss_w, loss_r, **TOL["reordered"])
    np.testing.assert_allclose(dW_w[0], dW_r[0], **TOL["weighted_gradient"])
    uniform = model.gradients(X, y, sample_weight=np.full(4, 7.0))[0]
    assert uniform == pytest.approx(model.loss(X, y), rel=TOL["reordered"]["rtol"])


def test_fit_with_sample_weight_equals_weighted_steps(rng):
    X = rng.standard_normal((10, 4))
    y = rng.integers(0, 3, 10)
    w = rng.random(10) + 0.1
    a, b = _model(fastnn.Adam(0.01)), _model(fastnn.Adam(0.01))
    first = b.loss(X, y, sample_weight=w)
    history = a.fit(X, y, epochs=3, batch_size=10, shuffle=False, sample_weight=w)
    losses = [b.train_step(X, y, sample_weight=w) for _ in range(3)]
    np.testing.assert_allclose(a.params, b.params, **TOL["reordered_params"])
    np.testing.assert_allclose(history.loss, losses, **TOL["reordered"])
    assert history.loss[0] == pytest.approx(first, rel=TOL["reordered"]["rtol"])
    unweighted = _model(fastnn.Adam(0.01))
    unweighted.fit(X, y, epochs=3, batch_size=10, shuffle=False)
    assert not np.allclose(unweighted.params, a.params)


@pytest.mark.parametrize(
    ("weights", "error", "match"),
    [
        (np.ones(3), ValueError, "3 entries for 6 samples"),
        (-np.ones(6), ValueError, "non-negative"),
        (np.zeros(6), ValueError, "positive sum"),
        (np.array([1, 1, np.nan, 1, 1, 1.0]), ValueError, "NaN"),
        (np.ones((6, 1)), ValueError, "1-D"),
        (np.array(["a"] * 6), TypeError, "real numbers"),
    ],
)
def test_bad_sample_weight_changes_nothing(rng, weights, error, match):
    model = _model("adam")
    X = rng.standard_normal((6, 4))
    y = rng.integers(0, 3, 6)
    before = model.params.copy(), model.optimizer.state.copy()
    for call in (model.train_step, model.loss, model.gradients):
        with pytest.raises(error, match=match):
            call(X, y, sample_weight=weights)
    with pytest.raises(error, match=match):
        model.fit(X, y, sample_weight=weights)
    np.testing.assert_array_equal(model.params, before[0])
    np.testing.assert_array_equal(model.optimizer.state, before[1])
    assert model.optimizer.step[0] == 0
