"""``fastnn.MLP``: a multilayer perceptron whose training step is one compiled call."""

import math
import threading
import weakref
from functools import cached_property

import numpy as np

from . import _validation as v
from .kernels import ACTIVATIONS, LEAKY_RELU, LOSSES, RELU, SOFTMAX
from .kernels import checks as kcheck
from .kernels import config as kconfig
from .kernels import network as knet
from .optimizers import get_optimizer, writable

HIDDEN = {k: c for k, c in ACTIVATIONS.items() if k != "softmax"}
DEFAULT_OUTPUT = {"mse": "identity", "bce": "sigmoid", "cross_entropy": "softmax"}
PREDICT_BLOCK = 512  # rows per block in predict; bounds its workspace
MAX_WORKSPACES = 4  # batch sizes whose workspaces a model keeps


class DivergenceError(FloatingPointError):
    """The loss became NaN or inf during training."""


class MLP:
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

    Notes
    -----
    Weights start He-normal for relu and leaky relu layers, Glorot-uniform for the
    others; biases start at zero. :meth:`predict` may be called from many threads at
    once; the training methods take a per-model lock, so two threads training one
    model run one after the other.
    """

    def __init__(
        self,
        sizes,
        hidden="relu",
        output=None,
        loss="mse",
        optimizer="adam",
        dtype="float32",
        seed=None,
        dropout=0.0,
        batch_norm=False,
        bn_momentum=0.1,
        bn_eps=1e-5,
    ):
        sizes = _check_sizes(sizes)
        n_layers = len(sizes) - 1
        self.loss_name = loss
        self._loss = v.check_name(loss, LOSSES, "loss")
        hidden_names = [hidden] * (n_layers - 1) if isinstance(hidden, str) else hidden
        if not isinstance(hidden_names, list | tuple):
            raise TypeError(f"hidden must be a name or a list of names, got {hidden!r}")
        if len(hidden_names) != n_layers - 1:
            raise ValueError(
                f"hidden lists {len(hidden_names)} activations for "
                f"{n_layers - 1} hidden layers (sizes={sizes})"
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
        self.dropout = _per_hidden(dropout, n_layers - 1, "dropout", _check_rate)
        self.batch_norm = _per_hidden(
            batch_norm, n_layers - 1, "batch_norm", _check_bool
        )
        self.bn_momentum = v.check_real(bn_momentum, "bn_momentum", 0.0, 1.0)
        self.bn_eps = v.check_real(bn_eps, "bn_eps", low=0.0, low_open=True)
        self.training = True

        layout = np.zeros((n_layers, 6), np.int64)
        config = np.zeros((n_layers, 3))
        offset = stats = 0
        for layer, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            hidden_layer = layer < n_layers - 1
            norm = hidden_layer and self.batch_norm[layer]
            layout[layer] = (
                n_in,
                n_out,
                offset,
                acts[layer],
                norm,
                stats if norm else -1,
            )
            config[layer] = (self.dropout[layer] if hidden_layer else 0.0,
                             self.bn_momentum, self.bn_eps)  # fmt: skip
            offset += n_in * n_out + n_out * (3 if norm else 1)
            stats += 2 * n_out if norm else 0
        self.layout = layout
        self.config = config
        self.running_stats = np.zeros(stats, self.dtype)
        self.params = np.zeros(offset, self.dtype)
        self.grads = np.zeros(offset, self.dtype)
        self.weights, self.biases = _views(self.params, layout)
        self._grad_w, self._grad_b = _views(self.grads, layout)

        self._rng = _make_rng(seed)  # before bind: a bad seed must not claim it
        self.optimizer = get_optimizer(optimizer)
        self.optimizer.bind(self, offset, self.dtype)
        self._init_params()
        self.dropout_seed = int(self._rng.integers(2**62))
        self._workspaces = {}
        self._no_weights = np.empty(0, self.dtype)
        self._lock = threading.RLock()

    # -- pickling (for transport only: files on disk are .npz, see fastnn.io) ------

    def __getstate__(self):
        # A consistent snapshot even while another thread trains the model: what a
        # step writes is copied under the model's lock (pickling reads it later).
        with self._lock:
            state = self.__dict__.copy()
            for name in ("params", "running_stats"):
                state[name] = state[name].copy()
            state["optimizer"] = self.optimizer.snapshot()
        del state["_lock"], state["_workspaces"]
        # weights/biases are views of params; rebuilt so they stay views after loading
        for name in ("weights", "biases", "_grad_w", "_grad_b"):
            del state[name]
        return state

    def __setstate__(self, state):
        self.__dict__.update(writable(state))  # read-only memory maps are copied
        self.weights, self.biases = _views(self.params, self.layout)
        self._grad_w, self._grad_b = _views(self.grads, self.layout)
        self._workspaces = {}
        self._lock = threading.RLock()
        self.optimizer._owner = weakref.ref(self)

    # -- construction ---------------------------------------------------------------

    def _init_params(self):
        for layer, (n_in, n_out, _, act, norm, so) in enumerate(self.layout):
            W = self.weights[layer]
            if norm:  # gamma = 1, beta = 0; running mean 0, running variance 1
                gamma, _ = self.norm_params(layer)
                gamma[...] = 1
                self.running_stats[so + n_out : so + 2 * n_out] = 1
            if act in (RELU, LEAKY_RELU):  # He
                W[...] = self._rng.normal(0.0, np.sqrt(2.0 / n_in), W.shape)
            else:  # Glorot (Xavier) uniform
                limit = np.sqrt(6.0 / (n_in + n_out))
                W[...] = self._rng.uniform(-limit, limit, W.shape)

    @property
    def n_params(self) -> int:
        return self.params.size

    def norm_params(self, layer):
        """Views ``(gamma, beta)`` of a batch-normalized layer's scale and shift."""
        n_in, n_out, off, _, norm, _ = self.layout[layer]
        if not norm:
            raise ValueError(f"layer {layer} has no batch normalization")
        start = off + (n_in + 1) * n_out
        return (self.params[start : start + n_out],
                self.params[start + n_out : start + 2 * n_out])  # fmt: skip

    def train(self):
        """Training behaviour for :meth:`loss`, :meth:`gradients` and
        :meth:`train_step`: dropout on, batch statistics (the default). Returns self."""
        self.training = True
        return self

    def eval(self):
        """Inference behaviour for :meth:`loss` and :meth:`gradients`: no dropout,
        running statistics. :meth:`predict` always behaves so. Returns self."""
        self.training = False
        return self

    @property
    def _net(self):
        return self.params, self.layout, self.config, self.running_stats

    @property
    def _mode(self):
        return knet.TRAINING if self.training else knet.INFERENCE

    @cached_property
    def _widest(self):
        """The largest ``n_in * n_out`` of the layers."""
        return max(a * b for a, b in zip(self.sizes[:-1], self.sizes[1:], strict=True))

    def _blas_threads(self, n_samples):
        """Context for a compiled call on batches of ``n_samples`` rows: BLAS on one
        thread where it would otherwise use several (see
        :func:`fastnn.kernels.config.blas_threads`)."""
        return kconfig.blas_threads(n_samples * self._widest)

    def _check_batch_norm_batch(self, n_samples):
        if self.training and n_samples == 1 and any(self.batch_norm):
            raise ValueError(
                "batch normalization needs more than one sample per batch in "
                "training (call model.eval() to use the running statistics)"
            )

    def __repr__(self):
        return (
            f"MLP({self.sizes}, hidden={self.hidden!r}, output={self.output!r}, "
            f"loss={self.loss_name!r}, optimizer={self.optimizer!r}, "
            f"dtype={np.dtype(self.dtype).name!r})"
        )

    # -- validation -----------------------------------------------------------------

    def _check_X(self, X, name="X", ndim=2):
        """Inputs (rows of features; one row when ``ndim`` is 1) as the kernels take
        them."""
        X = v.as_float_array(X, self.dtype, name, ndim=ndim)
        if X.shape[-1] != self.sizes[0]:
            raise ValueError(
                f"{name} has {X.shape[-1]} features but the model takes "
                f"{self.sizes[0]} (shape {X.shape})"
            )
        return X

    def _is_ready(self, A, n_cols):
        """Whether ``A`` is already a 2-D, C-contiguous, writable, non-empty array of
        the model's dtype with ``n_cols`` columns: the fast path, which only has to
        look at the values (in compiled code, without temporaries)."""
        return (
            type(A) is np.ndarray
            and A.dtype == self.dtype
            and A.ndim == 2
            and A.shape[0] > 0
            and A.shape[1] == n_cols
            and A.flags.c_contiguous
            and A.flags.writeable
        )

    def _check_XY(self, X, Y, names=("X", "Y")):
        if (
            self._is_ready(X, self.sizes[0])
            and self._is_ready(Y, self.sizes[-1])
            and X.shape[0] == Y.shape[0]
            and kcheck.check_batch(X, Y, self._loss) == kcheck.OK
        ):
            return X, Y
        X = self._check_X(X, names[0])
        Y = self._check_Y(Y, names[1])
        if Y.shape[0] != X.shape[0]:
            raise ValueError(
                f"{names[0]} has {X.shape[0]} rows but {names[1]} has {Y.shape[0]} "
                f"(shapes {X.shape} and {Y.shape})"
            )
        return X, Y

    def _check_Y(self, Y, name="Y"):
        n_out = self.sizes[-1]
        Y = np.asarray(Y)
        if Y.dtype.kind not in "biuf":
            raise TypeError(f"{name} must hold real numbers, got dtype {Y.dtype}")
        if Y.ndim == 1 and self.loss_name == "cross_entropy":
            return self._one_hot(Y, name)
        if Y.ndim == 1 and n_out == 1:
            Y = Y[:, None]
        Y = v.as_float_array(Y, self.dtype, name)
        if Y.shape[1] != n_out:
            raise ValueError(
                f"{name} has {Y.shape[1]} columns but the model has {n_out} outputs "
                f"(shape {Y.shape})"
            )
        if self.loss_name == "bce" and ((Y < 0).any() or (Y > 1).any()):
            i, j = np.argwhere((Y < 0) | (Y > 1))[0]
            raise ValueError(
                f"{name} for the bce loss must lie in [0, 1], got {Y[i, j].item()!r} "
                f"at index ({i}, {j})"
            )
        if self.loss_name == "cross_entropy":
            sums = Y.sum(axis=1)
            bad = (Y < 0).any(axis=1) | ~np.isclose(sums, 1.0, atol=1e-3)
            if bad.any():
                i = int(np.argmax(bad))
                raise ValueError(
                    f"{name} for cross_entropy must be one-hot (or probability) rows: "
                    "non-negative, each summing to 1 (within 1e-3); or pass 1-D "
                    f"integer labels; row {i} sums to {sums[i]:.6g} and its smallest "
                    f"entry is {Y[i].min():.6g}"
                )
        return Y

    def _one_hot(self, labels, name):
        n_out = self.sizes[-1]
        if labels.size == 0:
            raise ValueError(f"{name} is empty")
        if labels.dtype.kind == "f":
            fractional = ~np.isfinite(labels) | (labels != np.round(labels))
            if fractional.any():
                i = int(np.argmax(fractional))
                raise ValueError(
                    f"{name} labels must be whole numbers, got {labels[i].item()!r} "
                    f"at index {i}"
                )
        if labels.min() < 0 or labels.max() >= n_out:
            i = int(np.argmax((labels < 0) | (labels >= n_out)))
            raise ValueError(
                f"{name} holds label {labels[i].item()!r}, outside 0..{n_out - 1} "
                f"for a model with {n_out} outputs (at index {i})"
            )
        Y = np.zeros((labels.size, n_out), self.dtype)
        Y[np.arange(labels.size), labels.astype(np.intp)] = 1
        return Y

    def _workspace(self, n_samples):
        work = self._workspaces.get(n_samples)
        if work is None:
            if len(self._workspaces) >= MAX_WORKSPACES:
                self._workspaces.pop(next(iter(self._workspaces)))
            size = knet.workspace_size(self.layout, n_samples)
            work = self._workspaces[n_samples] = np.empty(size, self.dtype)
        return work

    # -- computing ------------------------------------------------------------------

    def predict(self, X):
        """Output activations for ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_in)

        Returns
        -------
        ndarray of shape (n_samples, n_out), of the model's dtype.
        """
        X = self._check_X(X)
        out = np.empty((X.shape[0], self.sizes[-1]), self.dtype)
        block = min(X.shape[0], PREDICT_BLOCK)
        work = np.empty(knet.workspace_size(self.layout, block), self.dtype)
        with self._blas_threads(block):
            return knet.predict_blocks(*self._net, X, work, out)

    def check_sample_weight(self, sample_weight, n_samples, normalize=True):
        """Validate per-sample loss weights; returns them scaled to mean 1.

        ``None`` gives an empty array (no weighting). Weights must be finite and
        non-negative with a positive sum; they are scaled so the loss is the weighted
        average of the per-sample losses.
        """
        if sample_weight is None:
            return self._no_weights
        w = v.as_float_array(sample_weight, self.dtype, "sample_weight", ndim=1)
        if w.shape[0] != n_samples:
            raise ValueError(
                f"sample_weight has {w.shape[0]} entries for {n_samples} samples"
            )
        if (w < 0).any():
            i = int(np.argmax(w < 0))
            raise ValueError(
                f"sample_weight must be non-negative, got {w[i].item()!r} at index {i}"
            )
        if w.sum() <= 0:
            total = float(w.sum())
            raise ValueError(f"sample_weight must have a positive sum, got {total!r}")
        return w * (n_samples / w.sum()) if normalize else w

    def _check_training_input(self, X, Y, sample_weight):
        """``(X, Y, sample_weight)`` checked for a training call: the arrays the
        kernels take, the weights scaled to mean 1 (empty for none)."""
        X, Y = self._check_XY(X, Y)
        w = self.check_sample_weight(sample_weight, X.shape[0])
        self._check_batch_norm_batch(X.shape[0])
        return X, Y, w

    def loss(self, X, Y, sample_weight=None) -> float:
        """The loss on ``(X, Y)``, exactly as :meth:`train_step` computes it.

        ``sample_weight`` of shape (n_samples,) makes it the weighted average of the
        per-sample losses.
        """
        X, Y, w = self._check_training_input(X, Y, sample_weight)
        with self._lock, self._blas_threads(X.shape[0]):
            work = self._workspace(X.shape[0])
            return float(
                knet.network_loss(*self._net, X, Y, w, self._loss, work, self._mode,
                                  self.dropout_seed, self.optimizer.step[0])
            )  # fmt: skip

    def gradients(self, X, Y, sample_weight=None):
        """Loss and gradients on ``(X, Y)``, without changing the model.

        Returns
        -------
        loss : float
        dW : list of ndarray shaped like ``weights``
        db : list of ndarray shaped like ``biases``
        """
        X, Y, w = self._check_training_input(X, Y, sample_weight)
        with self._lock, self._blas_threads(X.shape[0]):
            work = self._workspace(X.shape[0])
            value = self._step_kernel(X, Y, w, work, self._mode)  # updates nothing
            _check_finite(value)
            return (
                float(value),
                [g.copy() for g in self._grad_w],
                [g.copy() for g in self._grad_b],
            )

    def train_step(self, X, Y, sample_weight=None) -> float:
        """One optimizer step on the batch ``(X, Y)``; returns the loss before it.

        Forward, loss, backward and the update of every layer run in one compiled
        call that allocates nothing once the batch size has been seen.
        ``sample_weight`` of shape (n_samples,) weights the per-sample losses.

        Raises
        ------
        DivergenceError
            If the loss is NaN or inf; the model and optimizer are then unchanged.
        """
        X, Y, w = self._check_training_input(X, Y, sample_weight)
        with self._lock, self._blas_threads(X.shape[0]):
            work = self._workspace(X.shape[0])
            value = self._step_kernel(X, Y, w, work, knet.TRAINING_UPDATE)
        _check_finite(value)
        return float(value)

    def _step_kernel(self, X, Y, w, work, mode):
        """:func:`fastnn.kernels.network.train_step` on checked arguments: a step in
        mode ``TRAINING_UPDATE``, the gradients alone in the others (one compiled
        function for both)."""
        opt = self.optimizer
        return knet.train_step(
            self.params, self.grads, opt.state, opt.step, self.layout, self.config,
            self.running_stats, X, Y, w, self._loss, opt.code, opt.hyper, work, mode,
            self.dropout_seed, self._no_weights,  # an empty backup: none kept
        )  # fmt: skip

    def fit(self, X, Y, epochs=1, **kwargs):
        """Train on ``(X, Y)``; see :func:`fastnn.training.fit` for the options."""
        from .training import fit

        return fit(self, X, Y, epochs=epochs, **kwargs)

    def save(self, path):
        """Write the model and its optimizer state to one ``.npz`` file."""
        from .io import save

        save(self, path)


def _make_rng(seed):
    try:
        return np.random.default_rng(seed)
    except (TypeError, ValueError) as err:
        raise type(err)(
            "seed must be None, a non-negative integer or a sequence of them, a "
            f"SeedSequence or a Generator; got {seed!r} ({err})"
        ) from err


def _check_sizes(sizes):
    try:
        sizes = list(sizes)
    except TypeError as err:
        raise TypeError(f"sizes must be a list of layer widths, got {sizes!r}") from err
    if len(sizes) < 2:
        raise ValueError(f"sizes needs at least 2 entries (input, output), got {sizes}")
    return [v.check_positive_int(s, f"sizes[{i}]") for i, s in enumerate(sizes)]


def _per_hidden(value, n_hidden, name, check):
    """One value for every hidden layer, or a list with one per hidden layer."""
    values = list(value) if isinstance(value, list | tuple) else [value] * n_hidden
    if len(values) != n_hidden:
        raise ValueError(
            f"{name} lists {len(values)} values for {n_hidden} hidden layers"
        )
    return [check(x, name) for x in values]


def _check_rate(value, name):
    return v.check_real(value, name, 0.0, 1.0, high_open=True)


def _check_bool(value, name):
    if not isinstance(value, bool | np.bool_):
        raise TypeError(
            f"{name} must be True or False (or a list of them), got {value!r}"
        )
    return bool(value)


def _views(flat, layout):
    weights, biases = [], []
    for n_in, n_out, off, *_ in layout:
        weights.append(flat[off : off + n_in * n_out].reshape(n_in, n_out))
        biases.append(flat[off + n_in * n_out : off + n_in * n_out + n_out])
    return weights, biases


def _check_finite(value):
    if not math.isfinite(value):  # math: ~20x cheaper than NumPy on a scalar
        raise DivergenceError(
            f"the loss is {value}: training diverged (try a smaller learning rate); "
            "the parameters were not updated"
        )
