"""The engine of :meth:`fastnn.MLP.fit`: mini-batch training, epochs in compiled code.

The epochs run in chunks inside :func:`fastnn.kernels.network.fit_epochs`; Python
regains control between chunks only for progress, validation, early stopping and
Ctrl-C. A chunk lasts about :data:`CHUNK_SECONDS`, or one epoch when validation, early
stopping or per-epoch output needs Python after every epoch.
"""

import sys
import time
from dataclasses import dataclass, field

import numba
import numpy as np
from tqdm.auto import tqdm

from . import _validation as v
from ._compiled import PREDICT_BLOCK
from .errors import DivergenceError
from .kernels import LOSSES, SIGMOID, SOFTMAX
from .kernels import network as knet
from .kernels.layout import ACT

CHUNK_SECONDS = 0.25
MAX_ORDER_ENTRIES = 1 << 22  # bounds the per-chunk array of sample orders


@dataclass
class History:
    """What :meth:`fastnn.MLP.fit` did, epoch by epoch.

    Attributes
    ----------
    loss : list of float
        Training loss per epoch: the mean of its batch losses, weighted by batch size.
    val_loss, val_accuracy : list of float
        Per epoch, when ``validation_data`` was given (accuracy for softmax and
        sigmoid outputs only).
    best_epoch : int or None
        With early stopping: the epoch (0-based) whose parameters the model kept.
    stopped_early, interrupted : bool
        Whether early stopping ended the run, or Ctrl-C did.
    seconds : float
        Wall time of the whole call.
    """

    loss: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    val_accuracy: list = field(default_factory=list)
    best_epoch: int | None = None
    stopped_early: bool = False
    interrupted: bool = False
    seconds: float = 0.0

    @property
    def epochs(self) -> int:
        """Number of epochs completed."""
        return len(self.loss)

    @property
    def history(self) -> dict:
        """The per-epoch lists by name, as Keras' ``History.history``."""
        out = {"loss": self.loss}
        if self.val_loss:
            out["val_loss"] = self.val_loss
        if self.val_accuracy:
            out["val_accuracy"] = self.val_accuracy
        return out


def fit(
    model,
    X,
    Y,
    epochs=1,
    batch_size=32,
    shuffle=True,
    validation_data=None,
    early_stopping=False,
    patience=10,
    min_delta=0.0,
    verbose=0,
    sample_weight=None,
):
    """:meth:`fastnn.MLP.fit` on ``model``: see it for the parameters.

    ``model`` is a :class:`fastnn.MLP`, used through its documented attributes
    (``network``, ``optimizer``, ``lock``, ``rng``, ``workspace``, ``shards``,
    ``run_step``, ``blas_guard``).
    """
    X, Y = v.check_XY(model, X, Y)
    weights = v.check_sample_weight(model, sample_weight, X.shape[0])
    epochs = v.check_positive_int(epochs, "epochs")
    batch_size = min(v.check_positive_int(batch_size, "batch_size"), X.shape[0])
    v.check_batches(model, X.shape[0], batch_size, training=True)
    patience = v.check_positive_int(patience, "patience")
    min_delta = v.check_real(min_delta, "min_delta", low=0.0)
    if verbose not in (0, 1, 2, False, True):
        raise ValueError(f"verbose must be 0, 1 or 2, got {verbose!r}")
    if validation_data is not None:
        if not isinstance(validation_data, tuple | list) or len(validation_data) != 2:
            got = (
                f"a {type(validation_data).__name__} of {len(validation_data)}"
                if isinstance(validation_data, tuple | list)
                else type(validation_data).__name__
            )
            raise ValueError(
                f"validation_data must be a pair (X_val, Y_val), got {got}"
            )
        Xv, Yv = v.check_XY(model, *validation_data, names=("X_val", "Y_val"))
    per_epoch = validation_data is not None or early_stopping or verbose == 2
    return _Trainer(model, X, Y, weights, batch_size, bool(shuffle)).run(
        epochs,
        per_epoch,
        (Xv, Yv) if validation_data is not None else None,
        early_stopping,
        patience,
        min_delta,
        int(verbose),
    )


class _Trainer:
    """The buffers of one fit call, and its loop over chunks of epochs."""

    def __init__(self, model, X, Y, weights, batch_size, shuffle):
        self.model, self.X, self.Y, self.weights = model, X, Y, weights
        self.batch_size, self.shuffle = batch_size, shuffle
        n_in, n_out = X.shape[1], Y.shape[1]
        self.work = model.workspace(batch_size)
        self.batch = np.empty(batch_size * (n_in + n_out + 1), model.dtype)
        self.backup = np.empty_like(model.params)
        self.restorable = False

    def orders(self, n_epochs):
        n = self.X.shape[0]
        if not self.shuffle:
            return np.tile(np.arange(n, dtype=np.int64), (n_epochs, 1))
        rng = self.model.rng
        return np.stack([rng.permutation(n) for _ in range(n_epochs)]).astype(np.int64)

    def run_chunk(self, n_epochs):
        m = self.model
        losses = np.empty(n_epochs)
        with m.lock, m.blas_guard(self.batch_size):
            order = self.orders(n_epochs)
            if m.shards(self.batch_size) is None:
                plan = (order, self.batch_size, self.batch, self.restorable)
                stop = knet.fit_epochs(*self.arguments(plan), losses)
            else:
                stop = self.sharded_epochs(order, losses)
        self.restorable = True
        return losses, stop

    def sharded_epochs(self, order, losses):
        """:func:`fastnn.kernels.network.fit_epochs` for batches that are cut into
        shards: the same loop, in Python, each batch a data-parallel step
        (:mod:`fastnn._shards`); the same results but for the steps' last bits."""
        m, X, Y, weights = self.model, self.X, self.Y, self.weights
        n, n_in = X.shape
        n_out = Y.shape[1]
        for epoch in range(order.shape[0]):
            total = 0.0
            for start in range(0, n, self.batch_size):
                rows = order[epoch, start : start + self.batch_size]
                k = rows.shape[0]
                xb = np.take(X, rows, 0, out=self.batch[: k * n_in].reshape(k, n_in))
                yb = self.batch[k * n_in : k * (n_in + n_out)].reshape(k, n_out)
                np.take(Y, rows, 0, out=yb)
                wb = weights[rows] if weights.size else weights
                # sharded, or (the epoch's last, smaller batch) maybe not
                value = m.run_step(xb, yb, wb, knet.TRAINING_UPDATE, self.backup)
                if not np.isfinite(value):
                    losses[epoch] = value
                    if self.restorable:
                        m.params[...] = self.backup
                    return epoch
                self.restorable = True
                total += float(value) * k
            losses[epoch] = total / n
        return -1

    def warm_up(self, validation):
        """Compile (or load from the cache) what the epochs and the validation call,
        so that the first epoch's time is the epoch's; returns the seconds it took,
        or None when there was nothing to compile (or the kernels are not
        compiled, or the batches are sharded: their epochs do not run in
        ``fit_epochs``, and their first step compiles what they use)."""
        kernel = knet.fit_epochs
        if not hasattr(kernel, "overloads"):  # NUMBA_DISABLE_JIT
            return None
        if self.model.shards(self.batch_size) is not None:
            return None
        order = np.zeros((0, self.X.shape[0]), np.int64)  # no epochs: nothing runs
        args = (*self.arguments((order, self.batch_size, self.batch, False)),
                np.empty(0))  # fmt: skip
        signature = tuple(numba.typeof(a) for a in args)
        if signature in kernel.overloads and validation is None:
            return None
        start = time.perf_counter()
        kernel.compile(signature)
        if validation is not None:
            # the rows of the validation's first block: the kernels' path (and so
            # what is compiled) depends on the rows per call
            rows = min(validation[0].shape[0], PREDICT_BLOCK)
            _evaluate(self.model, validation[0][:rows], validation[1][:rows])
        return time.perf_counter() - start

    def arguments(self, plan):
        """What :func:`fastnn.kernels.network.fit_epochs` takes, but the losses."""
        m = self.model
        return (m.network_for(self.batch_size), m.optimizer.kernel_state,
                (self.X, self.Y, self.weights),
                (m.grads, self.work, self.backup), LOSSES[m.loss_name], m.dropout_seed,
                plan)  # fmt: skip

    def run(
        self,
        epochs,
        per_epoch,
        validation,
        early_stopping,
        patience,
        min_delta,
        verbose,
    ):  # noqa: E501
        m = self.model
        history = History()
        if verbose:
            seconds = self.warm_up(validation)
            if seconds is not None:
                print(
                    f"fastnn: kernels compiled (or loaded from Numba's cache) in "
                    f"{seconds:.3g} s",
                    file=sys.stderr,
                    flush=True,
                )
        bar = _progress_bar(epochs) if verbose == 1 else None
        best, best_params, waited = np.inf, None, 0
        start = time.perf_counter()
        chunk = 1
        try:
            while history.epochs < epochs:
                n_epochs = min(chunk, epochs - history.epochs)
                t0 = time.perf_counter()
                losses, stop = self.run_chunk(n_epochs)
                elapsed = time.perf_counter() - t0
                done = n_epochs if stop < 0 else stop
                history.loss.extend(float(x) for x in losses[:done])
                if stop >= 0:
                    err = DivergenceError(
                        f"the training loss became {losses[stop]} in epoch "
                        f"{history.epochs + 1}; the model keeps the last parameters "
                        "with a finite loss (try a smaller learning rate)"
                    )
                    err.history = history
                    raise err
                if validation is not None:
                    val_loss, val_acc = _evaluate(m, *validation)
                    history.val_loss.append(val_loss)
                    if val_acc is not None:
                        history.val_accuracy.append(val_acc)
                if bar is not None:
                    bar.update(n_epochs)
                    bar.set_postfix(loss=f"{history.loss[-1]:.4g}")
                elif verbose:
                    print(_epoch_line(history, epochs, elapsed / n_epochs), flush=True)
                if early_stopping:
                    current = history.val_loss[-1] if validation else history.loss[-1]
                    if current < best - min_delta:
                        best, waited = current, 0
                        best_params = m.params.copy()
                        history.best_epoch = history.epochs - 1
                    else:
                        waited += 1
                        if waited >= patience:
                            history.stopped_early = True
                            break
                if not per_epoch:
                    per = max(elapsed / n_epochs, 1e-9)
                    limit = max(1, MAX_ORDER_ENTRIES // self.X.shape[0])
                    chunk = int(min(max(1, CHUNK_SECONDS / per), limit, 2 * chunk + 1))
        except KeyboardInterrupt:
            history.interrupted = True
            if verbose:
                print(f"interrupted after {history.epochs} epochs", file=sys.stderr)
        finally:
            if bar is not None:
                bar.close()
        if history.stopped_early and best_params is not None:
            m.params[...] = best_params
        history.seconds = time.perf_counter() - start
        return history


def _evaluate(model, X, Y):
    """Validation loss, and accuracy for classification outputs, from one forward
    pass (inference behaviour, as :meth:`MLP.predict`)."""
    P = model.predict(X)
    D = np.empty_like(P)  # the loss kernel writes its gradient here; unused
    act = model.layout[-1, ACT]
    no_weights = v.check_sample_weight(model, None, 0)
    loss = float(knet.loss_delta(P, Y, LOSSES[model.loss_name], act, D, no_weights)[0])
    if act == SOFTMAX:
        return loss, float(np.mean(P.argmax(1) == Y.argmax(1)))
    if act == SIGMOID:
        return loss, float(np.mean((P > 0.5) == (Y > 0.5)))
    return loss, None


def _epoch_line(history, epochs, seconds_per_epoch):
    parts = [f"epoch {history.epochs}/{epochs}", f"loss {history.loss[-1]:.6g}"]
    if history.val_loss:
        parts.append(f"val_loss {history.val_loss[-1]:.6g}")
    if history.val_accuracy:
        parts.append(f"val_accuracy {history.val_accuracy[-1]:.4f}")
    parts.append(f"{seconds_per_epoch * 1e3:.3g} ms/epoch")
    return " - ".join(parts)


def _progress_bar(epochs):
    """A tqdm bar on a terminal; None elsewhere (a line per chunk is printed)."""
    if not sys.stderr.isatty():
        return None
    return tqdm(total=epochs, unit="epoch", leave=True)
