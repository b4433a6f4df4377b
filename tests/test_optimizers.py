"""Optimizer steps of ``MLP.train_step`` against PyTorch's update rules.

The rules are written out in plain NumPy in ``reference.sgd_step`` and
``reference.adam_step``; a reference trajectory (reference gradients, then the
reference update, in float64) is followed for several steps next to the model's.
"""

import numpy as np
import pytest

import fastnn

import reference
from conftest import TOL, tolerance

SIZES = [4, 6, 5, 3]
STEPS = 3

OPTIMIZERS = {
    "sgd": lambda: fastnn.SGD(lr=0.1),
    "momentum": lambda: fastnn.SGD(lr=0.1, momentum=0.9),
    "nesterov": lambda: fastnn.SGD(lr=0.05, momentum=0.8, nesterov=True),
    "adam": lambda: fastnn.Adam(lr=0.01),
    "adam-custom": lambda: fastnn.Adam(lr=0.003, beta1=0.5, beta2=0.9, eps=1e-6),
}


def unflatten(p, sizes):
    """Weights and biases (views) of the flat float64 vector ``p``, laid out as the
    model lays out ``params``."""
    weights, biases, off = [], [], 0
    for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
        weights.append(p[off : off + n_in * n_out].reshape(n_in, n_out))
        biases.append(p[off + n_in * n_out : off + n_in * n_out + n_out])
        off += n_in * n_out + n_out
    return weights, biases


def flatten(weights, biases):
    return np.concatenate(
        [np.concatenate([W.ravel(), b]) for W, b in zip(weights, biases, strict=True)]
    )


def reference_gradient(p, model, X, Y):
    weights, biases = unflatten(p, model.sizes)
    acts = [int(a) for a in model.layout[:, 3]]
    loss, dW, db = reference.mlp_loss_and_gradients(
        X, Y, weights, biases, acts, model.loss_name
    )
    return loss, flatten(dW, db)


def problem(dtype, loss="mse", seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((7, SIZES[0])).astype(dtype).astype(np.float64)
    if loss == "cross_entropy":
        Y = np.eye(SIZES[-1])[rng.integers(0, SIZES[-1], 7)]
    else:
        Y = rng.standard_normal((7, SIZES[-1])).astype(dtype).astype(np.float64)
    return X, Y


@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_train_step_follows_torch_rules(name, loss, dtype):
    opt = OPTIMIZERS[name]()
    model = fastnn.MLP(
        SIZES, hidden="tanh", loss=loss, optimizer=opt, dtype=dtype, seed=0
    )
    X, Y = problem(dtype, loss)
    tol = tolerance(dtype, "optimizer")

    p = model.params.astype(np.float64)
    buf = m = None
    v = np.zeros_like(p)
    m = np.zeros_like(p)
    for t in range(1, STEPS + 1):
        ref_loss, g = reference_gradient(p, model, X, Y)
        if isinstance(opt, fastnn.Adam):
            p, m, v = reference.adam_step(
                p, g, m, v, t, opt.lr, opt.beta1, opt.beta2, opt.eps
            )
        else:
            p, buf = reference.sgd_step(p, g, buf, opt.lr, opt.momentum, opt.nesterov)

        value = model.train_step(X, Y)

        np.testing.assert_allclose(value, ref_loss, **tol, err_msg=f"loss, step {t}")
        np.testing.assert_allclose(model.params, p, **tol, err_msg=f"step {t}")
        np.testing.assert_allclose(
            model.grads, g, **tolerance(dtype, "optimizer_grads"),
            err_msg=f"gradient, step {t}",
        )  # fmt: skip
        assert model.optimizer.step[0] == t
        state = model.optimizer.state
        assert state.dtype == dtype and state.shape == (2, model.n_params)
        if isinstance(opt, fastnn.Adam):
            np.testing.assert_allclose(state[0], m, **tol, err_msg=f"m, step {t}")
            np.testing.assert_allclose(state[1], v, **tolerance(dtype, "optimizer_v"))
        elif buf is not None:
            np.testing.assert_allclose(state[0], buf, **tol, err_msg=f"buf, step {t}")
        assert model.params.dtype == dtype


def test_step_counts_train_steps(dtype):
    model = fastnn.MLP([3, 4, 2], optimizer=fastnn.Adam(), dtype=dtype, seed=0)
    X, Y = np.ones((5, 3)), np.zeros((5, 2))
    assert model.optimizer.step[0] == 0
    for t in range(1, 6):
        model.train_step(X, Y)
        assert model.optimizer.step[0] == t
    model.loss(X, Y)
    model.gradients(X, Y)
    model.predict(X)
    assert model.optimizer.step[0] == 5
    with pytest.raises(ValueError):
        model.train_step(X, Y[:, :1])
    assert model.optimizer.step[0] == 5


def test_sgd_without_momentum_keeps_no_buffer(dtype):
    model = fastnn.MLP([3, 4, 2], optimizer=fastnn.SGD(lr=0.1), dtype=dtype, seed=0)
    X, Y = np.ones((5, 3)), np.ones((5, 2))
    model.train_step(X, Y)
    np.testing.assert_array_equal(model.optimizer.state, 0)


def test_changing_the_learning_rate_takes_effect():
    model = fastnn.MLP([3, 4, 2], optimizer=fastnn.SGD(lr=0.1), dtype="float64")
    X, Y = np.ones((5, 3)), np.ones((5, 2))
    _, dW, db = model.gradients(X, Y)
    before = model.params.copy()
    model.optimizer.lr = 0.5
    model.train_step(X, Y)
    np.testing.assert_allclose(
        model.params, before - 0.5 * flatten(dW, db), **TOL["one_update"]
    )


@pytest.mark.parametrize("name", ["momentum", "nesterov", "adam"])
def test_one_step_against_torch(name):
    torch = pytest.importorskip("torch")
    opt = OPTIMIZERS[name]()
    model = fastnn.MLP(SIZES, hidden="tanh", optimizer=opt, dtype="float64", seed=0)
    X, Y = problem(np.float64)
    tensors = [torch.tensor(a.copy(), requires_grad=True) for a in model.weights]
    tensors += [torch.tensor(b.copy(), requires_grad=True) for b in model.biases]
    n = len(model.weights)
    if name == "adam":
        torch_opt = torch.optim.Adam(
            tensors, lr=opt.lr, betas=(opt.beta1, opt.beta2), eps=opt.eps
        )
    else:
        torch_opt = torch.optim.SGD(
            tensors, lr=opt.lr, momentum=opt.momentum, nesterov=opt.nesterov
        )
    for _ in range(2):
        torch_opt.zero_grad()
        A = torch.tensor(X)
        for i in range(n):
            A = A @ tensors[i] + tensors[n + i]
            A = torch.tanh(A) if i < n - 1 else A
        loss = torch.nn.functional.mse_loss(A, torch.tensor(Y))
        loss.backward()
        torch_opt.step()
        value = model.train_step(X, Y)
        np.testing.assert_allclose(value, loss.item(), **TOL["torch"])
    for i in range(n):
        np.testing.assert_allclose(
            model.weights[i], tensors[i].detach().numpy(), **TOL["torch_params"]
        )
        np.testing.assert_allclose(
            model.biases[i], tensors[n + i].detach().numpy(), **TOL["torch_params"]
        )
