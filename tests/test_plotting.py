"""fastnn.plot_history: loss-curve pictures from a History, an estimator or a list."""

import sys
import warnings

import numpy as np
import pytest

import fastnn
from fastnn.plotting import plot_history

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_ok(path):
    data = path.read_bytes()
    return data.startswith(PNG_SIGNATURE) and len(data) > 1000


def _history(validation=True):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 3))
    y = (X[:, 0] > 0).astype(int)
    model = fastnn.MLP([3, 4, 2], loss="cross_entropy", seed=0)
    val = (X[:20], y[:20]) if validation else None
    return model.fit(X[20:], y[20:], epochs=6, batch_size=8, validation_data=val)


def test_plot_history_is_exported():
    assert fastnn.plot_history is plot_history


def test_history_with_validation_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "history.png"
    fig = plot_history(_history(), path, title="three inputs")
    assert _png_ok(path)
    loss_axes, score_axes = fig.axes
    assert [line.get_label() for line in loss_axes.get_lines()] == [
        "training loss",
        "validation loss",
    ]
    assert score_axes.get_ylabel() == "validation accuracy"
    np.testing.assert_array_equal(loss_axes.get_lines()[0].get_xdata(), np.arange(1, 7))


def test_demo_loss_curve_writes_a_png(tmp_path):
    """The XOR demo's 3000 epochs: losses over decades get a log axis."""
    pytest.importorskip("matplotlib")
    from fastnn.demo import train_xor

    _, history = train_xor(epochs=3000)
    path = tmp_path / "xor.png"
    fig = plot_history(history, str(path))
    assert _png_ok(path)
    (ax,) = fig.axes
    assert ax.get_yscale() == "log"


def test_demo_plot_option(tmp_path, capsys):
    """python -m fastnn demo --plot PATH saves the demo's loss curve."""
    pytest.importorskip("matplotlib")
    from fastnn.demo import main

    path = tmp_path / "demo.png"
    assert main(["--epochs", "300", "--plot", str(path)]) == 0
    assert _png_ok(path)
    assert str(path) in capsys.readouterr().out


def test_estimator_and_plain_list(tmp_path):
    pytest.importorskip("matplotlib")
    pytest.importorskip("sklearn")
    from fastnn.sklearn import MLPClassifier

    rng = np.random.default_rng(0)
    X = rng.standard_normal((80, 3))
    y = (X[:, 0] > 0).astype(int)
    est = MLPClassifier((4,), early_stopping=True, max_iter=8, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
    fig = plot_history(est, tmp_path / "estimator.png")
    assert _png_ok(tmp_path / "estimator.png") and len(fig.axes) == 2
    assert fig.axes[1].get_ylabel() == "validation accuracy"

    fig = plot_history([1.0, 0.5, 0.25], tmp_path / "list.png", logy=False)
    assert _png_ok(tmp_path / "list.png") and fig.axes[0].get_yscale() == "linear"


def test_without_path_the_figure_is_pyplots():
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    fig = plot_history(_history(validation=False).history)
    try:
        assert plt.fignum_exists(fig.number) and len(fig.axes) == 1
    finally:
        plt.close(fig)


def test_saving_leaves_pyplot_alone(tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    plot_history([3.0, 2.0], tmp_path / "a.png")
    assert plt.get_fignums() == before


@pytest.mark.parametrize(
    ("source", "error"),
    [(42, TypeError), ({"val_loss": [1.0]}, TypeError), ([], ValueError)],
)
def test_bad_sources_are_refused(source, error):
    with pytest.raises(error):
        plot_history(source)


def test_missing_matplotlib_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import raises ImportError
    with pytest.raises(ImportError, match=r"pip install matplotlib"):
        plot_history([1.0, 0.5])
