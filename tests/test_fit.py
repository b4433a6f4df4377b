"""fit: mini-batches, shuffling, validation, early stopping, divergence, Ctrl-C."""

import numpy as np
import pytest

import fastnn
from fastnn import training

from conftest import TOL


def _data(rng, n=37, n_in=5, n_out=3, dtype=np.float64):
    X = rng.standard_normal((n, n_in)).astype(dtype)
    y = rng.integers(0, n_out, n)
    return X, y


def _model(dtype="float64", optimizer=None, seed=0, sizes=(5, 8, 3)):
    return fastnn.MLP(
        list(sizes),
        hidden="tanh",
        loss="cross_entropy",
        optimizer=optimizer or fastnn.SGD(lr=0.1, momentum=0.5),
        dtype=dtype,
        seed=seed,
    )


@pytest.mark.parametrize("batch_size", [1, 8, 10, 37, 100])
def test_fit_equals_train_steps_over_batches(rng, batch_size):
    """One unshuffled epoch of fit is train_step over consecutive batches, the last
    one partial, and the epoch loss is the batch losses weighted by batch size."""
    X, y = _data(rng)
    a, b = _model(), _model()
    history = a.fit(X, y, epochs=2, batch_size=batch_size, shuffle=False)
    losses = []
    for _ in range(2):
        epoch = []
        for start in range(0, len(X), batch_size):
            xb, yb = X[start : start + batch_size], y[start : start + batch_size]
            epoch.append(b.train_step(xb, yb) * len(xb))
        losses.append(sum(epoch) / len(X))
    np.testing.assert_allclose(a.params, b.params, **TOL["reordered_params"])
    np.testing.assert_allclose(history.loss, losses, **TOL["reordered"])
    assert a.optimizer.step[0] == b.optimizer.step[0] == 2 * -(-len(X) // batch_size)


def test_shuffle_is_seeded_and_changes_order(rng):
    X, y = _data(rng)
    runs = [_model(seed=s).fit(X, y, epochs=3, batch_size=4) for s in (1, 1)]
    models = []
    for seed in (1, 1, 2):
        m = _model(seed=seed)
        m.fit(X, y, epochs=3, batch_size=4)
        models.append(m)
    assert runs[0].loss == runs[1].loss
    assert np.array_equal(models[0].params, models[1].params)
    unshuffled = _model(seed=1)
    unshuffled.fit(X, y, epochs=3, batch_size=4, shuffle=False)
    assert not np.array_equal(models[0].params, unshuffled.params)


def test_fit_keeps_dtype_and_learns(rng):
    X, _ = _data(rng, n=200)
    y = (X @ rng.standard_normal((5, 3))).argmax(axis=1)  # learnable labels
    model = _model(dtype="float32", optimizer=fastnn.Adam(lr=1e-2))
    history = model.fit(X, y, epochs=30, batch_size=16)
    assert model.params.dtype == np.float32
    assert history.epochs == 30
    assert history.loss[-1] < 0.7 * history.loss[0]


def test_validation_and_early_stopping_restore_best(rng):
    X, y = _data(rng, n=60)
    Xv, yv = _data(rng, n=30)
    model = _model(optimizer=fastnn.Adam(lr=0.05), sizes=(5, 32, 3))
    history = model.fit(
        X, y, epochs=300, batch_size=8, validation_data=(Xv, yv),
        early_stopping=True, patience=5,
    )  # fmt: skip
    assert history.stopped_early and history.epochs < 300
    assert len(history.val_loss) == len(history.val_accuracy) == history.epochs
    assert all(0.0 <= a <= 1.0 for a in history.val_accuracy)
    best = history.best_epoch
    assert history.val_loss[best] == min(history.val_loss)
    assert history.epochs == best + 1 + 5
    np.testing.assert_allclose(
        model.loss(Xv, yv), history.val_loss[best], **TOL["reordered"]
    )
    assert set(history.history) == {"loss", "val_loss", "val_accuracy"}


def test_divergence_stops_and_keeps_last_finite_parameters(rng):
    X = rng.standard_normal((16, 4)) * 100
    Y = rng.standard_normal((16, 1)) * 100
    model = fastnn.MLP([4, 8, 1], hidden="identity", loss="mse",
                       optimizer=fastnn.SGD(lr=1.0), seed=0)  # fmt: skip
    with pytest.raises(fastnn.DivergenceError, match="loss became") as info:
        model.fit(X, Y, epochs=1000, batch_size=16)
    assert np.isfinite(model.params).all()
    assert np.isfinite(model.loss(X, Y))
    history = info.value.history
    assert all(np.isfinite(history.loss))
    assert history.epochs < 1000


def test_ctrl_c_stops_cleanly_keeping_weights(rng, monkeypatch):
    X, y = _data(rng)
    model = _model()
    calls = []
    run_chunk = training._Trainer.run_chunk

    def interrupt_second(self, n_epochs):
        calls.append(n_epochs)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return run_chunk(self, n_epochs)

    monkeypatch.setattr(training._Trainer, "run_chunk", interrupt_second)
    history = model.fit(X, y, epochs=50, batch_size=8, verbose=0)
    assert history.interrupted and history.epochs == calls[0]
    twin = _model()  # the weights kept are those of the epochs that completed
    twin.fit(X, y, epochs=calls[0], batch_size=8)
    np.testing.assert_array_equal(model.params, twin.params)
    assert not np.array_equal(model.params, _model().params)


def test_verbose_two_prints_a_line_per_epoch(rng, capsys):
    X, y = _data(rng)
    _model().fit(X, y, epochs=3, batch_size=8, verbose=2, validation_data=(X, y))
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3
    assert lines[-1].startswith("epoch 3/3 - loss ") and "val_accuracy" in lines[-1]


def test_silent_by_default(rng, capsys):
    X, y = _data(rng)
    _model().fit(X, y, epochs=2)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"epochs": 0}, ValueError),
        ({"epochs": 1.5}, TypeError),
        ({"batch_size": 0}, ValueError),
        ({"patience": 0}, ValueError),
        ({"verbose": 3}, ValueError),
        ({"validation_data": (np.zeros((2, 4)), np.zeros(2, int))}, ValueError),
        ({"validation_data": "nope"}, ValueError),
    ],
)
def test_bad_fit_arguments_change_nothing(rng, kwargs, error):
    X, y = _data(rng)
    model = _model()
    params, state = model.params.copy(), model.optimizer.state.copy()
    with pytest.raises(error):
        model.fit(X, y, **kwargs)
    np.testing.assert_array_equal(model.params, params)
    np.testing.assert_array_equal(model.optimizer.state, state)
    assert model.optimizer.step[0] == 0


def test_demo_reaches_full_accuracy(capsys):
    from fastnn.__main__ import main

    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "accuracy: 100%" in out and "µs per step" in out


@pytest.mark.parametrize("seed", range(4))
def test_xor_converges_with_fit(seed):
    from fastnn.demo import X, Y, train_xor

    model, history = train_xor(seed=seed)
    assert np.array_equal(model.predict(X) > 0.5, Y > 0.5)
    assert history.loss[-1] < 0.01
