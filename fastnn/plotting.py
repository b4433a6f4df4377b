"""Loss-curve pictures with matplotlib, an optional dependency (``fastnn[plot]``).

matplotlib is imported only when a picture is drawn, so ``import fastnn`` stays fast
and works without it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # matplotlib is optional and imported when a picture is drawn
    from matplotlib.figure import Figure

__all__ = ["plot_history"]

MARKERS_UP_TO = 30  # epochs: fewer than this and each epoch gets a marker


def plot_history(
    source: object,
    path: str | os.PathLike[str] | None = None,
    *,
    title: str | None = None,
    logy: bool | None = None,
) -> Figure:
    """Draw a loss curve, and the validation curves when there are any.

    Parameters
    ----------
    source : History, estimator, mapping or sequence of float
        What to draw: the :class:`~fastnn.training.History` returned by
        :meth:`fastnn.MLP.fit` (``loss``, ``val_loss``, ``val_accuracy`` and the best
        epoch of early stopping); a fitted :class:`fastnn.sklearn.MLPClassifier` or
        :class:`~fastnn.sklearn.MLPRegressor` (or any estimator with ``loss_curve_``,
        and ``validation_scores_`` if present); a mapping such as
        ``History.history`` (``"loss"`` and optional ``"val_loss"``,
        ``"val_accuracy"``); or a plain sequence of per-epoch losses.
    path : str or os.PathLike, optional
        Write the picture there, in the format its suffix names (``.png``,
        ``.svg``, ``.pdf``, ...), with matplotlib's Agg backend: no window opens
        and pyplot's list of figures is left alone. Without ``path`` the figure is
        made with pyplot, so ``plt.show()`` or a notebook shows it.
    title : str, optional
        Title above the plot.
    logy : bool, optional
        Logarithmic loss axis. By default it is used when every loss is positive
        and they span more than a factor of 100.

    Returns
    -------
    matplotlib.figure.Figure
        One axes for the losses (training, and validation when given) against the
        epoch, counted from 1; a second one beside it for the validation accuracy
        or score when there is one.

    Raises
    ------
    ImportError
        If matplotlib is not installed.
    TypeError, ValueError
        If ``source`` holds no loss curve, or one that is empty or not finite.
    """
    curves = _curves(source)
    try:
        import matplotlib  # noqa: F401
    except ImportError as err:
        raise ImportError(
            "plot_history needs matplotlib: pip install matplotlib "
            "(or pip install 'fastnn[plot]')"
        ) from err
    n_panels = 1 if curves["score"] is None else 2
    size = (5.0 * n_panels + 1.0, 4.0)
    if path is None:
        import matplotlib.pyplot as plt

        fig = plt.figure(figsize=size, layout="constrained")
    else:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=size, layout="constrained")
        FigureCanvasAgg(fig)
    _draw(fig, curves, n_panels, logy)
    if title is not None:
        fig.suptitle(title)
    if path is not None:
        fig.savefig(os.fspath(path), dpi=100)
    return fig


def _curves(source):
    """The per-epoch lists to draw: losses, scores and the best epoch (0-based)."""
    best = None
    if isinstance(source, Mapping):
        loss, val_loss = source.get("loss"), source.get("val_loss")
        score, score_name = source.get("val_accuracy"), "validation accuracy"
    elif hasattr(source, "loss_curve_"):  # a fitted scikit-learn estimator
        loss, val_loss = source.loss_curve_, None
        score = getattr(source, "validation_scores_", None)
        classifier = hasattr(source, "classes_")
        score_name = "validation accuracy" if classifier else "validation score"
        if not _empty(score):
            best = int(np.argmax(score))
    elif hasattr(source, "loss") and hasattr(source, "val_loss"):  # a History
        loss, val_loss = source.loss, source.val_loss
        score, score_name = source.val_accuracy, "validation accuracy"
        best = getattr(source, "best_epoch", None)
    elif isinstance(source, Sequence | np.ndarray) and not isinstance(source, str):
        loss, val_loss, score, score_name = source, None, None, ""
    else:
        raise TypeError(
            "plot_history takes a fastnn History, a fitted estimator with "
            "loss_curve_, a mapping with 'loss', or a sequence of losses; got "
            f"{type(source).__name__}"
        )
    if loss is None:
        raise TypeError("plot_history found no loss curve (no 'loss' entry)")
    curves = {"loss": _values(loss, "loss"), "best": best, "score_name": score_name}
    curves["val_loss"] = None if _empty(val_loss) else _values(val_loss, "val_loss")
    curves["score"] = None if _empty(score) else _values(score, score_name)
    return curves


def _empty(values):
    return values is None or len(values) == 0


def _values(values, name):
    array = np.asarray(values, dtype=float)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"the {name} curve must be a non-empty 1-D sequence")
    return array


def _draw(fig, curves, n_panels, logy):
    from matplotlib.ticker import MaxNLocator

    loss, val_loss = curves["loss"], curves["val_loss"]
    losses = loss if val_loss is None else np.concatenate([loss, val_loss])
    finite = losses[np.isfinite(losses)]
    if logy is None:
        logy = bool(
            finite.size and finite.min() > 0 and finite.max() > 100 * finite.min()
        )
    marker = "o" if loss.size <= MARKERS_UP_TO else None
    ax = fig.add_subplot(1, n_panels, 1)
    epochs = np.arange(1, loss.size + 1)
    ax.plot(epochs, loss, marker=marker, ms=3, label="training loss")
    if val_loss is not None:
        val_epochs = np.arange(1, val_loss.size + 1)
        ax.plot(val_epochs, val_loss, marker=marker, ms=3, label="validation loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (log scale)" if logy else "loss")
    if logy:
        ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, alpha=0.3)
    _mark_best(ax, curves["best"])
    ax.legend()
    if n_panels == 2:
        score = curves["score"]
        ax2 = fig.add_subplot(1, 2, 2)
        ax2.plot(np.arange(1, score.size + 1), score, marker=marker, ms=3,
                 color="C2", label=curves["score_name"])  # fmt: skip
        ax2.set_xlabel("epoch")
        ax2.set_ylabel(curves["score_name"])
        ax2.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax2.grid(True, alpha=0.3)
        _mark_best(ax2, curves["best"])
        ax2.legend()
    ax.set_title(f"{loss.size} epochs, final training loss {loss[-1]:.4g}",
                 fontsize="medium")  # fmt: skip


def _mark_best(ax, best):
    if best is not None:
        ax.axvline(
            best + 1, color="0.5", ls="--", lw=1, label=f"best epoch ({best + 1})"
        )
