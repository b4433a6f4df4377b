"""``fastnn.MLP``: a multilayer perceptron whose training step is one compiled call."""

import math
import os
import threading
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from . import _format, _shards, training
from . import _validation as v
from ._compiled import CompiledCalls
from .errors import DivergenceError
from .kernels import ACTIVATIONS, LEAKY_RELU, LOSSES, RELU, SOFTMAX
from .kernels import layout as klayout
from .kernels import network as knet
from .optimizers import Optimizer, get_optimizer, writable

__all__ = ["MLP", "DivergenceError"]

HIDDEN = {k: c for k, c in ACTIVATIONS.items() if k != "softmax"}
DEFAULT_OUTPUT = {"mse": "identity", "bce": "sigmoid", "cross_entropy": "softmax"}


class MLP(CompiledCalls):
    """A multilayer perceptron trained by backpropagation.

    Parameters
    ----------
    sizes : sequence of int
        Units per layer, input first: ``[784, 128, 10]`` is one hidden layer of 128.
        At least two entries, each at least 1.
    hidden : str or list of str, default "relu"
        Activation of the hidden layers, one name or one per hidden layer:
        ``"sigmoid"``, ``"tanh"``, ``"relu"``, ``"leaky_relu"``, ``"identity"``.
    output : str, optional
        Activation of the output layer: one of those or ``"softmax"``. Defaults to
        the natural partner of ``loss``: identity for MSE, sigmoid for BCE, softmax
        for cross-entropy.
    loss : {"mse", "bce", "cross_entropy"}, default "mse"
        MSE and BCE are means over all output elements; cross-entropy is the mean over
        samples of ``-sum(y log p)``.
    optimizer : Optimizer or {"sgd", "adam"}, default "adam"
        ``fastnn.SGD(...)`` or ``fastnn.Adam(...)``; strings give the defaults.
    dtype : {"float32", "float64"}, default "float32"
    seed : int, optional
        Seeds the initial weights, the shuffling in :meth:`fit` and the dropout masks.
    dropout : float or list of float, default 0.0
        Inverted dropout rate in [0, 1) on the output of each hidden layer (one value,
        or one per hidden layer); active in training only.
    batch_norm : bool or list of bool, default False
        Batch normalization between each hidden layer's matmul and its activation,
        as PyTorch's ``BatchNorm1d`` (learned ``gamma``/``beta``, running statistics
        for inference).
    bn_momentum : float, default 0.1
        Momentum of the running statistics, in [0, 1].
    bn_eps : float, default 1e-5
        Added to the variance, > 0.

    Attributes
    ----------
    weights : list of ndarray of shape (n_in, n_out)
        Writable views into the one flat parameter buffer ``params``.
    biases : list of ndarray of shape (n_out,)
        Likewise.
    optimizer : Optimizer
        Holds the optimizer's state.
    running_stats : ndarray
        Running means and variances of the batch-normalized layers.
    training : bool
        Whether :meth:`loss`, :meth:`gradients` and :meth:`train_step` use training
        behaviour (dropout, batch statistics); see :meth:`train` and :meth:`eval`.
    network : tuple (params, layout, config, running_stats)
        The network as the kernels of :mod:`fastnn.kernels.network` take it (the
        layout is described in :mod:`fastnn.kernels.layout`).
    lock : threading.RLock
        Held by the training methods, :meth:`save` and pickling: hold it to read or
        change the parameters between two steps of another thread.
    rng : numpy.random.Generator
        Shuffles the samples in :meth:`fit`; saved with the model.

    Notes
    -----
    Weights start He-normal for relu and leaky relu layers, Glorot-uniform for the
    others; biases start at zero. :meth:`predict` may be called from many threads at
    once; the training methods take a per-model lock, so two threads training one
    model run one after the other.

    :mod:`fastnn.training`, :mod:`fastnn.io` and :mod:`fastnn.explain` use a model
    through :attr:`network`, :attr:`lock`, :attr:`rng`, :meth:`workspace`,
    :meth:`shards`, :meth:`run_step`, :meth:`blas_guard` and :meth:`infer`, and
    nothing private; validation rules live
    in ``fastnn._validation`` and the layout arithmetic in
    :mod:`fastnn.kernels.layout`.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        hidden: str | Sequence[str] = "relu",
        output: str | None = None,
        loss: str = "mse",
        optimizer: Optimizer | str | dict = "adam",
        dtype: DTypeLike = "float32",
        seed: int
        | Sequence[int]
        | np.random.SeedSequence
        | np.random.Generator
        | None = None,
        dropout: float | Sequence[float] = 0.0,
        batch_norm: bool | Sequence[bool] = False,
        bn_momentum: float = 0.1,
        bn_eps: float = 1e-5,
    ) -> None:
        sizes = v.check_sizes(sizes)
        n_hidden = len(sizes) - 2
        self.loss_name = loss
        self._loss = v.check_name(loss, LOSSES, "loss")
        hidden_names = [hidden] * n_hidden if isinstance(hidden, str) else hidden
        if not isinstance(hidden_names, list | tuple):
            raise TypeError(f"hidden must be a name or a list of names, got {hidden!r}")
        if len(hidden_names) != n_hidden:
            raise ValueError(
                f"hidden lists {len(hidden_names)} activations for "
                f"{n_hidden} hidden layers (sizes={sizes})"
            )
        output = DEFAULT_OUTPUT[loss] if output is None else output
        acts = [v.check_name(h, HIDDEN, "hidden activation") for h in hidden_names]
        acts.append(v.check_name(output, ACTIVATIONS, "output activation"))
        if acts[-1] == SOFTMAX and sizes[-1] < 2:
            raise ValueError("a softmax output needs at least 2 units")
        self.sizes = sizes
        self.hidden = list(hidden_names)
        self.output = output
        self.dtype = v.check_dtype(dtype)
        self.seed = seed
        self.dropout = v.per_hidden(dropout, n_hidden, "dropout", v.check_rate)
        self.batch_norm = v.per_hidden(batch_norm, n_hidden, "batch_norm", v.check_bool)
        self.bn_momentum = v.check_real(bn_momentum, "bn_momentum", 0.0, 1.0)
        self.bn_eps = v.check_real(bn_eps, "bn_eps", low=0.0, low_open=True)
        self.training = True

        self.layout = klayout.make_layout(sizes, acts, self.batch_norm + [False])
        self.config = klayout.make_config(
            self.dropout + [0.0], self.bn_momentum, self.bn_eps
        )
        n_params = klayout.n_params(self.layout)
        self.running_stats = np.zeros(klayout.n_stats(self.layout), self.dtype)
        self.params = np.zeros(n_params, self.dtype)
        self.grads = np.zeros(n_params, self.dtype)
        self._make_views()

        self.rng = v.make_rng(seed)  # before bind: a bad seed must not claim it
        self.optimizer = get_optimizer(optimizer)
        self.optimizer.bind(self, n_params, self.dtype)
        self._init_params()
        self.dropout_seed = int(self.rng.integers(2**62))
        self._init_scratch()
        self.lock = threading.RLock()

    def _make_views(self):
        self.weights, self.biases = klayout.param_views(self.params, self.layout)
        self._grad_w, self._grad_b = klayout.param_views(self.grads, self.layout)

    # -- pickling (for transport only: files on disk are .npz, see fastnn.io) ------

    def __getstate__(self):
        # A consistent snapshot even while another thread trains the model: what a
        # step writes is copied under the model's lock (pickling reads it later).
        with self.lock:
            state = self.__dict__.copy()
            for name in ("params", "running_stats"):
                state[name] = state[name].copy()
            state["optimizer"] = self.optimizer.snapshot()
        del state["lock"]
        self._drop_scratch(state)
        # weights/biases are views of params; rebuilt so they stay views after loading
        for name in ("weights", "biases", "_grad_w", "_grad_b"):
            del state[name]
        return state

    def __setstate__(self, state):
        self.__dict__.update(writable(state))  # read-only memory maps are copied
        self._make_views()
        self._init_scratch()
        self.lock = threading.RLock()
        self.optimizer.attach(self)

    # -- construction ---------------------------------------------------------------

    def _init_params(self):
        for layer, (n_in, n_out, _, act, norm, _) in enumerate(self.layout):
            W = self.weights[layer]
            if norm:  # gamma = 1, beta = 0; running mean 0, running variance 1
                gamma, _ = self.norm_params(layer)
                gamma[...] = 1
                klayout.running_views(self.running_stats, self.layout, layer)[1][
                    ...
                ] = 1
            if act in (RELU, LEAKY_RELU):  # He
                W[...] = self.rng.normal(0.0, np.sqrt(2.0 / n_in), W.shape)
            else:  # Glorot (Xavier) uniform
                limit = np.sqrt(6.0 / (n_in + n_out))
                W[...] = self.rng.uniform(-limit, limit, W.shape)

    @property
    def n_params(self) -> int:
        return self.params.size

    def norm_params(self, layer: int) -> tuple[np.ndarray, np.ndarray]:
        """Views ``(gamma, beta)`` of a batch-normalized layer's scale and shift."""
        if not self.layout[layer, klayout.NORM]:
            raise ValueError(f"layer {layer} has no batch normalization")
        return klayout.norm_views(self.params, self.layout, layer)

    def train(self) -> "MLP":
        """Training behaviour for :meth:`loss`, :meth:`gradients` and
        :meth:`train_step`: dropout on, batch statistics (the default). Returns self."""
        self.training = True
        return self

    def eval(self) -> "MLP":
        """Inference behaviour for :meth:`loss` and :meth:`gradients`: no dropout,
        running statistics. :meth:`predict` always behaves so. Returns self."""
        self.training = False
        return self

    @property
    def _mode(self):
        return knet.TRAINING if self.training else knet.INFERENCE

    def __repr__(self):
        return (
            f"MLP({self.sizes}, hidden={self.hidden!r}, output={self.output!r}, "
            f"loss={self.loss_name!r}, optimizer={self.optimizer!r}, "
            f"dtype={np.dtype(self.dtype).name!r})"
        )

    # -- computing ------------------------------------------------------------------

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Output activations for ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_in)

        Returns
        -------
        ndarray of shape (n_samples, n_out), of the model's dtype.
        """
        if not (isinstance(X, np.ndarray) and v.is_ready(self, X, self.sizes[0])):
            X = v.check_X(self, X)  # converted, or refused with a message
        out: np.ndarray = np.empty((X.shape[0], self.sizes[-1]), self.dtype)
        bad = self.infer(knet.predict_blocks, X, out=out)
        if bad >= 0:  # the kernel checks the values of X before it computes
            v.refuse_not_finite(X, "X", bad)
        return out

    def check_sample_weight(
        self, sample_weight: ArrayLike | None, n_samples: int, normalize: bool = True
    ) -> np.ndarray:
        """Validate per-sample loss weights; returns them scaled to mean 1.

        ``None`` gives an empty array (no weighting). Weights must be finite and
        non-negative with a positive sum; they are scaled so the loss is the weighted
        average of the per-sample losses.
        """
        return v.check_sample_weight(self, sample_weight, n_samples, normalize)

    def loss(
        self, X: ArrayLike, Y: ArrayLike, sample_weight: ArrayLike | None = None
    ) -> float:
        """The loss on ``(X, Y)``, exactly as :meth:`train_step` computes it.

        ``sample_weight`` of shape (n_samples,) makes it the weighted average of the
        per-sample losses.
        """
        X, Y, w = v.check_training_input(self, X, Y, sample_weight)
        with self.lock, self.blas_guard(X.shape[0]):
            shards = self.shards(X.shape[0])
            if shards is not None:
                step = int(self.optimizer.step[0])
                return _shards.loss(self, shards, (X, Y, w), self._mode, step)
            work = self.workspace(X.shape[0])
            return float(
                knet.network_loss(self.network_for(X.shape[0]), (X, Y, w),
                                  self._loss, work,
                                  self._mode, self.dropout_seed,
                                  self.optimizer.step[0])
            )  # fmt: skip

    def gradients(
        self, X: ArrayLike, Y: ArrayLike, sample_weight: ArrayLike | None = None
    ) -> tuple[float, list[np.ndarray], list[np.ndarray]]:
        """Loss and gradients on ``(X, Y)``, without changing the model.

        Returns
        -------
        loss : float
        dW : list of ndarray shaped like ``weights``
        db : list of ndarray shaped like ``biases``
        """
        X, Y, w = v.check_training_input(self, X, Y, sample_weight)
        with self.lock, self.blas_guard(X.shape[0]):
            value = self.run_step(X, Y, w, self._mode)  # updates nothing
            _check_finite(value)
            return (
                float(value),
                [g.copy() for g in self._grad_w],
                [g.copy() for g in self._grad_b],
            )

    def train_step(
        self, X: ArrayLike, Y: ArrayLike, sample_weight: ArrayLike | None = None
    ) -> float:
        """One optimizer step on the batch ``(X, Y)``; returns the loss before it.

        Forward, loss, backward and the update of every layer run in one compiled
        call that allocates nothing once the batch size has been seen. A batch
        large enough to be cut into shards runs data-parallel on fastnn's threads
        instead, with the same bits at any thread count (see :doc:`/threads`).
        ``sample_weight`` of shape (n_samples,) weights the per-sample losses.

        Raises
        ------
        DivergenceError
            If the loss is NaN or inf; the model and optimizer are then unchanged.
        """
        X, Y, w = v.check_training_input(self, X, Y, sample_weight)
        with self.lock, self.blas_guard(X.shape[0]):
            value = self.run_step(X, Y, w, knet.TRAINING_UPDATE)
        _check_finite(value)
        return float(value)

    def fit(
        self,
        X: ArrayLike,
        Y: ArrayLike,
        epochs: int = 1,
        batch_size: int = 32,
        shuffle: bool = True,
        validation_data: tuple[ArrayLike, ArrayLike] | None = None,
        early_stopping: bool = False,
        patience: int = 10,
        min_delta: float = 0.0,
        verbose: int = 0,
        sample_weight: ArrayLike | None = None,
    ) -> training.History:
        """Train on ``(X, Y)`` with mini-batches; the epochs run in compiled code.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_in)
        Y : array-like of shape (n_samples, n_out), or (n_samples,)
            Targets; 1-D integer class labels for cross-entropy.
        epochs : int, default 1
        batch_size : int, default 32
            Samples per step; the last batch of an epoch holds the remainder. Values
            above ``n_samples`` mean one full batch.
        shuffle : bool, default True
            Visit the samples in a new random order each epoch (seeded by the model's
            ``seed``: the same seed, data and thread count give bit-identical weights).
        validation_data : tuple (X_val, Y_val), optional
            Evaluated after every epoch: ``val_loss`` and, for softmax and sigmoid
            outputs, ``val_accuracy``.
        early_stopping : bool, default False
            Stop when the monitored loss (``val_loss`` if given, else the training loss)
            has not improved by more than ``min_delta`` for ``patience`` epochs, and
            restore the parameters of the best epoch.
        patience : int, default 10
        min_delta : float, default 0.0
        verbose : {0, 1, 2}, default 0
            0 is silent; 1 shows a tqdm progress bar on a terminal, or a line per
            chunk of epochs elsewhere; 2 prints one line per epoch. Both first print
            (to stderr) the time taken to compile the kernels, or to load them from
            Numba's cache, so that the epochs' times are the epochs'.
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative weights of the samples' losses, scaled to mean 1 over the data
            set: an epoch's loss is then the weighted average of the per-sample losses.

        Returns
        -------
        History

        Raises
        ------
        DivergenceError
            When the loss becomes NaN or inf. Training stops at that step; the model
            keeps the last parameters whose loss was finite (the optimizer's state is
            not rolled back). The exception's ``history`` attribute holds the epochs
            done.

        Notes
        -----
        fit always trains with training behaviour (dropout, batch statistics), whatever
        ``model.training`` says, and validates with inference behaviour.
        Ctrl-C stops training cleanly between chunks of compiled epochs, keeping the
        weights trained so far; the returned history has ``interrupted=True``.
        """
        return training.fit(
            self,
            X,
            Y,
            epochs=epochs,
            batch_size=batch_size,
            shuffle=shuffle,
            validation_data=validation_data,
            early_stopping=early_stopping,
            patience=patience,
            min_delta=min_delta,
            verbose=verbose,
            sample_weight=sample_weight,
        )

    def save(self, path: str | os.PathLike) -> None:
        """Write the model and its training state to one ``.npz`` file at ``path``;
        see :func:`fastnn.io.save`."""
        _format.save(self, path)


def _check_finite(value):
    if not math.isfinite(value):  # math: ~20x cheaper than NumPy on a scalar
        raise DivergenceError(
            f"the loss is {value}: training diverged (try a smaller learning rate); "
            "the parameters were not updated"
        )
