"""What a new user meets first: messages that say what to do, fit's verbose output."""

import numpy as np
import pytest

import fastnn


def _labels(n=40, n_in=6, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, n_in)), rng.integers(0, classes, n)


def test_1d_labels_with_mse_say_to_use_cross_entropy():
    X, y = _labels()
    model = fastnn.MLP([6, 8, 3], seed=0)  # loss="mse" by default
    with pytest.raises(ValueError, match=r'is 1-D \(shape \(40,\)\).*"cross_entropy"'):
        model.fit(X, y)


def test_a_column_of_labels_gets_the_ravel_hint_and_good_grammar():
    X, y = _labels()
    model = fastnn.MLP([6, 8, 3], loss="cross_entropy", seed=0)
    with pytest.raises(ValueError, match=r"1 column but .*3 outputs.*Y\.ravel\(\)"):
        model.fit(X, y[:, None])
    with pytest.raises(ValueError, match="2 columns but"):
        model.fit(X, np.eye(2)[y % 2])


def test_verbose_fit_reports_compile_time_on_its_own_line(capsys):
    X, y = _labels()
    model = fastnn.MLP([6, 8, 3], loss="cross_entropy", seed=0)
    model.fit(X, y, epochs=3, batch_size=8, verbose=2, validation_data=(X, y))
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    assert [line.split(" - ")[0] for line in lines] == [
        "epoch 1/3",
        "epoch 2/3",
        "epoch 3/3",
    ]
    assert all(line.endswith("ms/epoch") for line in lines)
    if hasattr(fastnn.kernels.network.fit_epochs, "overloads"):  # compiled kernels
        assert "kernels compiled (or loaded from Numba's cache) in" in err


def test_fit_has_its_whole_docstring():
    doc = fastnn.MLP.fit.__doc__
    for name in ("batch_size", "validation_data", "early_stopping", "verbose",
                 "sample_weight", "DivergenceError"):  # fmt: skip
        assert name in doc, name
