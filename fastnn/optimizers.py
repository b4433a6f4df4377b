"""Optimizers: hyperparameters in Python, state in flat buffers, updates compiled.

Each optimizer keeps its state (momentum buffer, or Adam's moments) in one array of
shape ``(2, n_params)`` and a step count; the update is one fused loop in
:mod:`fastnn.kernels.optimizers`. An optimizer instance belongs to one model.
"""

import weakref

import numpy as np

from . import _validation as v
from .kernels import optimizers as kopt


class Optimizer:
    """Base class. Subclasses define ``code``, ``_fields`` and validation."""

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

    @property
    def hyper(self):
        """float64 array of hyperparameters in the kernels' layout."""
        return self._hyper

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
    """

    name = "sgd"
    code = kopt.SGD
    _fields = ("lr", "momentum", "nesterov")

    def __init__(self, lr=0.01, momentum=0.0, nesterov=False):
        super().__init__(lr=lr, momentum=momentum, nesterov=nesterov)
        if self.nesterov and self.momentum == 0:
            raise ValueError("nesterov=True needs momentum > 0")

    def _check(self, name, value):
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
    """

    name = "adam"
    code = kopt.ADAM
    _fields = ("lr", "beta1", "beta2", "eps")

    def __init__(self, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
        super().__init__(lr=lr, beta1=beta1, beta2=beta2, eps=eps)

    def _check(self, name, value):
        if name in ("beta1", "beta2"):
            return v.check_real(value, name, low=0.0, high=1.0, high_open=True)
        return v.check_real(value, name, low=0.0, low_open=True)


OPTIMIZERS = {"sgd": SGD, "adam": Adam}


def get_optimizer(spec) -> Optimizer:
    """An optimizer from an instance, or from ``"sgd"``/``"adam"`` with defaults."""
    if isinstance(spec, Optimizer):
        return spec
    if isinstance(spec, dict):
        config = dict(spec)
        cls = v.check_name(config.pop("name", None), OPTIMIZERS, "optimizer")
        return cls(**config)
    return v.check_name(spec, OPTIMIZERS, "optimizer")()
