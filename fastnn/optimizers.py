"""Optimizers: hyperparameters in Python, state in flat buffers, updates compiled.

Each optimizer keeps its state (momentum buffer, or Adam's moments) in one array of
shape ``(2, n_params)`` and a step count; the update is one fused loop in
:mod:`fastnn.kernels.optimizers`. An optimizer instance belongs to one model.
"""

import copy
import weakref

import numpy as np

from . import _validation as v
from .kernels import optimizers as kopt


class Optimizer:
    """Base class. Subclasses define ``code``, ``_fields`` and validation."""

    name: str = ""
    code = -1
    _fields: tuple = ()

    def __init__(self, **values):
        self._hyper = np.zeros(len(kopt.HYPER_FIELDS))
        for name, value in values.items():
            setattr(self, name, value)
        self.state = None  # ndarray of shape (2, n_params), set by bind()
        self.step = np.zeros(1, np.int64)
        self._owner = None

    def __setattr__(self, name, value):
        if name in self._fields:
            value = self._check(name, value)
            self._hyper[kopt.HYPER_FIELDS.index(name)] = float(value)
        object.__setattr__(self, name, value)

    def _check(self, name, value):  # pragma: no cover - overridden
        return value

    def bind(self, owner, n_params, dtype):
        """Allocate zeroed state for a model with ``n_params`` parameters."""
        if self._owner is not None and self._owner() is not owner:
            raise ValueError(
                f"this {type(self).__name__} already belongs to another model; "
                "create one optimizer per model"
            )
        self._owner = weakref.ref(owner)
        self.state = np.zeros((2, n_params), dtype)
        self.step[0] = 0

    def attach(self, owner):
        """Belong to ``owner`` again, keeping the state (for an unpickled model)."""
        self._owner = weakref.ref(owner)

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_owner"] = None  # a weak reference; the model rebinds it on unpickling
        return state

    def __setstate__(self, state):
        self.__dict__.update(writable(state))

    def snapshot(self):
        """A copy with its own state arrays, bound to no model (for pickling)."""
        twin = copy.copy(self)  # through __getstate__: no owner
        for name in ("state", "step", "_hyper"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(twin, name, value.copy())
        return twin

    @property
    def hyper(self):
        """float64 array of hyperparameters in the kernels' layout."""
        return self._hyper

    @property
    def kernel_state(self):
        """``(code, hyper, state, step)``: the optimizer as the kernels take it
        (:mod:`fastnn.kernels.optimizers`)."""
        return self.code, self._hyper, self.state, self.step

    def get_config(self) -> dict:
        """Hyperparameters as a dict, enough to rebuild the optimizer."""
        return {"name": self.name, **{f: getattr(self, f) for f in self._fields}}

    def __repr__(self):
        args = ", ".join(f"{f}={getattr(self, f)!r}" for f in self._fields)
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, as ``torch.optim.SGD``.

    Parameters
    ----------
    lr : float, default 0.01
        Learning rate, > 0.
    momentum : float, default 0.0
        Momentum factor, >= 0. The buffer is ``buf = momentum * buf + grad``.
    nesterov : bool, default False
        Use Nesterov momentum (needs ``momentum > 0``).
    weight_decay : float, default 0.0
        L2 penalty, >= 0, added to the gradient as ``grad + weight_decay * p``.
    decay_bias : bool, default True
        Whether weight decay applies to the biases too (PyTorch applies it to every
        parameter it is given; scikit-learn's ``alpha`` spares the biases).
    """

    name = "sgd"
    code = kopt.SGD
    _fields = ("lr", "momentum", "nesterov", "weight_decay", "decay_bias")

    def __init__(
        self, lr=0.01, momentum=0.0, nesterov=False, weight_decay=0.0, decay_bias=True
    ):
        super().__init__(
            lr=lr,
            momentum=momentum,
            nesterov=nesterov,
            weight_decay=weight_decay,
            decay_bias=decay_bias,
        )
        if self.nesterov and self.momentum == 0:
            raise ValueError("nesterov=True needs momentum > 0")

    def _check(self, name, value):
        if name in ("weight_decay", "decay_bias"):
            return _check_decay(name, value)
        if name == "lr":
            return v.check_real(value, "lr", low=0.0, low_open=True)
        if name == "momentum":
            value = v.check_real(value, "momentum", low=0.0)
            if value == 0 and getattr(self, "nesterov", False):
                raise ValueError("nesterov=True needs momentum > 0")
            return value
        if not isinstance(value, bool | np.bool_):
            raise TypeError(f"nesterov must be True or False, got {value!r}")
        return bool(value)


class Adam(Optimizer):
    """Adam with bias correction, as ``torch.optim.Adam``.

    Parameters
    ----------
    lr : float, default 1e-3
        Learning rate, > 0.
    beta1, beta2 : float, default 0.9 and 0.999
        Decay rates of the moment estimates, in [0, 1).
    eps : float, default 1e-8
        Added to the denominator, > 0.
    weight_decay : float, default 0.0
        L2 penalty, >= 0, added to the gradient as ``grad + weight_decay * p``
        (coupled, as ``torch.optim.Adam``; see :class:`AdamW` for decoupled).
    decay_bias : bool, default True
        Whether weight decay applies to the biases too.
    """

    name = "adam"
    code = kopt.ADAM
    _fields = ("lr", "beta1", "beta2", "eps", "weight_decay", "decay_bias")

    def __init__(
        self,
        lr=1e-3,
        beta1=0.9,
        beta2=0.999,
        eps=1e-8,
        weight_decay=0.0,
        decay_bias=True,
    ):
        super().__init__(
            lr=lr,
            beta1=beta1,
            beta2=beta2,
            eps=eps,
            weight_decay=weight_decay,
            decay_bias=decay_bias,
        )

    def _check(self, name, value):
        if name in ("weight_decay", "decay_bias"):
            return _check_decay(name, value)
        if name in ("beta1", "beta2"):
            return v.check_real(value, name, low=0.0, high=1.0, high_open=True)
        return v.check_real(value, name, low=0.0, low_open=True)


class AdamW(Adam):
    """Adam with decoupled weight decay, as ``torch.optim.AdamW``.

    Each step first shrinks the parameters, ``p *= 1 - lr * weight_decay``, then takes
    the Adam step on the plain gradient. Parameters as :class:`Adam`, except that
    ``weight_decay`` defaults to 0.01 (PyTorch's default).
    """

    name = "adamw"
    code = kopt.ADAMW

    def __init__(
        self,
        lr=1e-3,
        beta1=0.9,
        beta2=0.999,
        eps=1e-8,
        weight_decay=0.01,
        decay_bias=True,
    ):
        super().__init__(lr, beta1, beta2, eps, weight_decay, decay_bias)


def writable(state):
    """``state`` (a dict) with each read-only array replaced by a writable copy
    (a plain ndarray, also for memory maps).

    Unpickling can hand back read-only arrays (``joblib.load(path, mmap_mode="r")``
    gives read-only memory maps); the kernels write to the buffers of models and
    optimizers, so ``__setstate__`` copies such arrays.
    """
    return {
        k: np.array(v) if isinstance(v, np.ndarray) and not v.flags.writeable else v
        for k, v in state.items()
    }


def _check_decay(name, value):
    if name == "weight_decay":
        return v.check_real(value, "weight_decay", low=0.0)
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"decay_bias must be True or False, got {value!r}")
    return bool(value)


OPTIMIZERS = {"sgd": SGD, "adam": Adam, "adamw": AdamW}


def get_optimizer(spec) -> Optimizer:
    """An optimizer from an instance, a config dict, or a name with defaults."""
    if isinstance(spec, Optimizer):
        return spec
    if isinstance(spec, dict):
        config = dict(spec)
        cls = v.check_name(config.pop("name", None), OPTIMIZERS, "optimizer")
        return cls(**config)
    return v.check_name(spec, OPTIMIZERS, "optimizer")()
