"""Bad arguments to ``fastnn.MLP`` and the optimizers are refused with a ``ValueError``
or ``TypeError`` naming the argument and the value, and leave nothing half done: an
optimizer passed to a refused model stays free, and a refused assignment leaves the
optimizer, and the model it belongs to, exactly as a twin. Values at the ends of the
valid intervals are accepted and stored as given.

Bad data (X, Y, sample weights, ``fit``'s settings) is in ``test_bad_input.py``.
"""

import numpy as np
import pytest

import fastnn

from _helpers import (
    CE,
    INF,
    N_IN,
    N_OUT,
    NAN,
    X,
    Y,
    assert_same_state,
    assert_unchanged,
    build,
    snapshot,
)

# -- constructor arguments: (kwargs, exception, message) ------------------------------

TWO_HIDDEN = [3, 4, 5, 2]
BAD_MODELS = {
    "sizes None": ({"sizes": None}, TypeError, "list of layer widths, got None"),
    "sizes 5": ({"sizes": 5}, TypeError, "sizes must be a list"),
    "sizes [3]": ({"sizes": [3]}, ValueError, "at least 2 entries"),
    "sizes (4,)": ({"sizes": (4,)}, ValueError, r"2 entries .*got \[4\]"),
    "sizes []": ({"sizes": []}, ValueError, "at least 2 entries"),
    "sizes zero": ({"sizes": [3, 0, 2]}, ValueError, r"sizes\[1\] must be at least 1"),
    "sizes negative": (
        {"sizes": [3, 4, -2]},
        ValueError,
        r"sizes\[2\] must be at least 1",
    ),  # fmt: skip
    "sizes zero inputs": ({"sizes": [0, 4, 2]}, ValueError, r"sizes\[0\]"),
    "sizes numpy zero": (
        {"sizes": np.array([4, 0, 3])},
        ValueError,
        r"sizes\[1\] must be .*, got 0$",
    ),  # fmt: skip
    "sizes numpy negative": (
        {"sizes": np.array([4, 5, -3])},
        ValueError,
        r"sizes\[2\] .* got -3$",
    ),  # fmt: skip
    "sizes float": (
        {"sizes": [3, 2.5, 2]},
        TypeError,
        r"sizes\[1\] must be an integer",
    ),  # fmt: skip
    "sizes bool": (
        {"sizes": [3, True, 2]},
        TypeError,
        r"sizes\[1\] must be an integer",
    ),  # fmt: skip
    "sizes a string": ({"sizes": "453"}, TypeError, r"sizes\[0\] .* integer, got '4'"),
    "hidden swish": (
        {"hidden": "swish"},
        ValueError,
        "unknown hidden activation 'swish'",
    ),  # fmt: skip
    "hidden softmax": (
        {"hidden": "softmax"},
        ValueError,
        "unknown hidden activation 'softmax'",
    ),  # fmt: skip
    "hidden ReLU": ({"hidden": "ReLU"}, ValueError, "hidden activation 'ReLU'; exp"),
    "hidden None": ({"hidden": None}, TypeError, "names, got None"),
    "hidden [None]": ({"hidden": [None]}, ValueError, "hidden activation None"),
    "hidden 3": ({"hidden": 3}, TypeError, "hidden"),
    "hidden empty list": ({"hidden": []}, ValueError, "0 activations for 1 hidden"),
    "hidden too few": (
        {"sizes": TWO_HIDDEN, "hidden": ["tanh"]},
        ValueError,
        "1 activations for 2 hidden layers",
    ),  # fmt: skip
    "hidden too many": (
        {"sizes": TWO_HIDDEN, "hidden": ["tanh"] * 3},
        ValueError,
        "3 activations for 2 hidden layers",
    ),  # fmt: skip
    "hidden one unknown": (
        {"sizes": TWO_HIDDEN, "hidden": ["tanh", "nope"]},
        ValueError,
        "unknown hidden activation 'nope'",
    ),  # fmt: skip
    "output swish": (
        {"output": "swish"},
        ValueError,
        "unknown output activation 'swish'",
    ),  # fmt: skip
    "output argmax": ({"output": "argmax"}, ValueError, "output activation 'argmax'"),
    "softmax of one output": (
        {"sizes": [3, 1], "output": "softmax"},
        ValueError,
        "softmax output needs",
    ),  # fmt: skip
    "loss hinge": ({"loss": "hinge"}, ValueError, "unknown loss 'hinge'"),
    "loss MSE": ({"loss": "MSE"}, ValueError, "unknown loss 'MSE'; expected one"),
    "loss None": ({"loss": None}, ValueError, "unknown loss"),
    "optimizer rmsprop": (
        {"optimizer": "rmsprop"},
        ValueError,
        "unknown optimizer 'rmsprop'",
    ),  # fmt: skip
    "optimizer Adam": ({"optimizer": "Adam"}, ValueError, "unknown optimizer 'Adam'"),
    "optimizer None": ({"optimizer": None}, ValueError, "unknown optimizer"),
    "optimizer class": ({"optimizer": fastnn.SGD}, ValueError, "optimizer <class"),
    "optimizer NaN lr": (
        {"optimizer": {"name": "sgd", "lr": NAN}},
        ValueError,
        r"lr must be in \(0\.0, inf\), got nan",
    ),  # fmt: skip
    "optimizer no name": ({"optimizer": {"lr": 0.1}}, ValueError, "optimizer None"),
    "dtype int32": ({"dtype": "int32"}, ValueError, "float32' or 'float64"),
    "dtype float16": ({"dtype": "float16"}, ValueError, "float32' or 'float64"),
    "dtype np.int64": ({"dtype": np.int64}, ValueError, "float32' or 'float64"),
    "dtype bogus": ({"dtype": "bogus"}, TypeError, "float32' or 'float64"),
    "dropout NaN": ({"dropout": NAN}, ValueError, r"\[0\.0, 1\.0\), got nan"),
    "dropout [1.0]": ({"dropout": [1.0]}, ValueError, r"got 1\.0"),
    "bn_momentum -0.1": ({"bn_momentum": -0.1}, ValueError, r"got -0\.1"),
    "bn_eps NaN": ({"bn_eps": NAN}, ValueError, r"bn_eps must be in \(0\.0, inf\)"),
    "seed -1": ({"seed": -1}, ValueError, "seed must be .*; got -1"),
    "seed 1.5": ({"seed": 1.5}, TypeError, r"seed must be .*; got 1\.5"),
}


@pytest.mark.parametrize(
    ("kwargs", "error", "match"), BAD_MODELS.values(), ids=BAD_MODELS
)
def test_bad_model_is_refused_and_leaves_the_optimizer_free(kwargs, error, match):
    optimizer = fastnn.SGD(lr=0.1)
    kwargs = {"sizes": [N_IN, 5, N_OUT], "optimizer": optimizer, **kwargs}
    with pytest.raises(error, match=match):
        fastnn.MLP(**kwargs)
    assert fastnn.MLP([N_IN, 5, N_OUT], optimizer=optimizer).optimizer is optimizer


# -- hyperparameters: (optimizer class, kwargs, exception, message) ------------------

BAD_HYPER = [
    (fastnn.SGD, {"lr": 0}, ValueError, "lr must be in"),
    (fastnn.SGD, {"lr": -0.1}, ValueError, "lr must be in"),
    (fastnn.SGD, {"lr": -INF}, ValueError, r"lr must be in \(0\.0, inf\), got -inf"),
    (fastnn.SGD, {"lr": NAN}, ValueError, "lr must be in"),
    (fastnn.SGD, {"lr": np.float32("nan")}, ValueError, "lr must be in .*got nan"),
    (fastnn.SGD, {"lr": INF}, ValueError, "lr must be in"),
    (fastnn.SGD, {"lr": "0.1"}, TypeError, "lr must be a real number"),
    (fastnn.SGD, {"lr": True}, TypeError, "lr must be a real number"),
    (fastnn.SGD, {"lr": None}, TypeError, "lr must be a real number, got None"),
    (fastnn.SGD, {"momentum": -0.5}, ValueError, "momentum must be in"),
    (fastnn.SGD, {"momentum": -1e-9}, ValueError, "got -1e-09"),
    (fastnn.SGD, {"momentum": NAN}, ValueError, "momentum must be in"),
    (fastnn.SGD, {"momentum": INF}, ValueError, r"momentum must be in \[0\.0, inf\)"),
    (fastnn.SGD, {"nesterov": True}, ValueError, "nesterov=True needs momentum"),
    (fastnn.SGD, {"momentum": 0.9, "nesterov": 1}, TypeError, "nesterov must be"),
    (fastnn.SGD, {"weight_decay": NAN}, ValueError, "weight_decay must be in .*nan"),
    (fastnn.SGD, {"decay_bias": "no"}, TypeError, "True or False, got 'no'"),
    (fastnn.Adam, {"lr": 0}, ValueError, "lr must be in"),
    (fastnn.Adam, {"lr": NAN}, ValueError, "lr must be in"),
    (fastnn.Adam, {"beta1": 1.0}, ValueError, "beta1 must be in"),
    (fastnn.Adam, {"beta1": -0.1}, ValueError, "beta1 must be in"),
    (fastnn.Adam, {"beta1": NAN}, ValueError,
     r"beta1 must be in \[0\.0, 1\.0\), got nan"),
    (fastnn.Adam, {"beta2": 1.0}, ValueError, "beta2 must be in"),
    (fastnn.Adam, {"beta2": 1.5}, ValueError, "beta2 must be in"),
    (fastnn.Adam, {"beta2": -0.5}, ValueError, r"beta2 .*got -0\.5"),
    (fastnn.Adam, {"beta2": NAN}, ValueError, "beta2 must be in"),
    (fastnn.Adam, {"eps": 0}, ValueError, "eps must be in"),
    (fastnn.Adam, {"eps": -1e-8}, ValueError, "eps must be in"),
    (fastnn.Adam, {"eps": NAN}, ValueError, "eps must be in .*nan"),
    (fastnn.Adam, {"eps": INF}, ValueError, "eps must be in .*got inf"),
    (fastnn.AdamW, {"beta1": 1.0}, ValueError, r"beta1 .*got 1\.0"),
    (fastnn.AdamW, {"lr": -1e-3}, ValueError, "got -0.001"),
    (fastnn.AdamW, {"weight_decay": -0.01}, ValueError, "weight_decay .*got -0.01"),
]  # fmt: skip
HYPER_IDS = [
    f"{cls.__name__}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})"
    for cls, kwargs, *_ in BAD_HYPER
]
# A setting refused in combination (nesterov needs momentum) is not one assignment.
ASSIGNED = [case for case in BAD_HYPER if "nesterov" not in case[1]]


@pytest.mark.parametrize(("cls", "kwargs", "error", "match"), BAD_HYPER, ids=HYPER_IDS)
def test_bad_hyperparameter_is_refused(cls, kwargs, error, match):
    with pytest.raises(error, match=match):
        cls(**kwargs)


@pytest.mark.parametrize(
    ("cls", "kwargs", "error", "match"),
    ASSIGNED,
    ids=[i for i, case in zip(HYPER_IDS, BAD_HYPER, strict=True) if case in ASSIGNED],
)
def test_bad_hyperparameter_assignment_changes_nothing(cls, kwargs, error, match):
    model, twin = build(optimizer=cls(lr=0.01)), build(optimizer=cls(lr=0.01))
    with pytest.raises(error, match=match):
        for name, value in kwargs.items():
            setattr(model.optimizer, name, value)
    assert_same_state(model, twin)  # the hyper array the kernels read included
    assert model.optimizer.get_config() == twin.optimizer.get_config()
    model.train_step(X, Y[CE])  # the kernels saw no trace of the bad value
    twin.train_step(X, Y[CE])
    assert_same_state(model, twin)


def test_boundary_hyperparameters_are_accepted():
    """Values at the ends of the valid intervals are kept as given, both as
    attributes and in the ``hyper`` array the kernels read."""
    from fastnn.kernels.optimizers import HYPER_FIELDS

    sgd = fastnn.SGD(lr=1e-12, momentum=0.0)
    adam = fastnn.Adam(beta1=0.0, beta2=0.0, eps=1e-300)
    assert (sgd.lr, sgd.momentum, sgd.weight_decay) == (1e-12, 0.0, 0.0)
    assert (adam.beta1, adam.beta2, adam.eps) == (0.0, 0.0, 1e-300)
    for opt, stored in [
        (sgd, {"lr": 1e-12, "momentum": 0.0, "nesterov": 0.0}),
        (adam, {"lr": 1e-3, "beta1": 0.0, "beta2": 0.0, "eps": 1e-300}),
    ]:
        for name, value in stored.items():
            assert opt.hyper[HYPER_FIELDS.index(name)] == value, name
        fastnn.MLP([3, 2], optimizer=opt)  # binding keeps them
        for name, value in stored.items():
            assert opt.hyper[HYPER_FIELDS.index(name)] == value, name
    for bn_momentum in (0.0, 1.0):
        model = fastnn.MLP([3, 4, 2], batch_norm=True, bn_momentum=bn_momentum,
                           bn_eps=1e-300, dropout=0.0)  # fmt: skip
        assert (model.bn_momentum, model.bn_eps) == (bn_momentum, 1e-300)
        assert model.dropout == [0.0]


def test_one_optimizer_for_two_models_is_refused():
    opt = fastnn.Adam(lr=0.01)
    first = fastnn.MLP([3, 4, 2], optimizer=opt, seed=0)
    X, Y = np.ones((2, 3)), np.zeros((2, 2))
    first.train_step(X, Y)
    saved = snapshot(first)
    with pytest.raises(ValueError, match="already belongs to another model"):
        fastnn.MLP([3, 4, 2], optimizer=opt, seed=0)
    assert_unchanged(first, saved)
    assert first.optimizer is opt
    first.train_step(X, Y)
    assert opt.step[0] == 2


def test_optimizer_strings_give_defaults():
    sgd = fastnn.MLP([3, 2], optimizer="sgd").optimizer
    adam = fastnn.MLP([3, 2], optimizer="adam").optimizer
    assert isinstance(sgd, fastnn.SGD) and isinstance(adam, fastnn.Adam)
    assert (sgd.lr, sgd.momentum, sgd.nesterov) == (0.01, 0.0, False)
    assert (adam.lr, adam.beta1, adam.beta2, adam.eps) == (1e-3, 0.9, 0.999, 1e-8)
