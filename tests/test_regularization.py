"""Dropout and batch normalization: kernels, model, reference, PyTorch, save/load."""

import numpy as np
import pytest

import fastnn
from fastnn.kernels import dropout as kdrop

import reference
from conftest import TOL, assert_close


def _model(dtype="float64", dropout=0.0, batch_norm=False, seed=0, **kwargs):
    return fastnn.MLP([5, 8, 6, 3], hidden="tanh", loss="cross_entropy",
                      optimizer=kwargs.pop("optimizer", fastnn.SGD(0.1)),
                      dtype=dtype, seed=seed, dropout=dropout, batch_norm=batch_norm,
                      **kwargs)  # fmt: skip


def _data(rng, n=10):
    return rng.standard_normal((n, 5)), rng.integers(0, 3, n)


def test_batch_norm_reference_matches_finite_differences(rng):
    Z = rng.standard_normal((7, 4))
    gamma, beta = rng.standard_normal(4), rng.standard_normal(4)
    G = rng.standard_normal((7, 4))  # L = sum(G * Y)
    _, Zhat, _, var = reference.batch_norm_forward(Z, gamma, beta)
    dZ, d_gamma, d_beta = reference.batch_norm_backward(G, Zhat, gamma, var)

    def loss(Z, gamma, beta):
        return np.sum(G * reference.batch_norm_forward(Z, gamma, beta)[0])

    for array, grad in ((Z, dZ), (gamma, d_gamma), (beta, d_beta)):
        numeric = np.zeros_like(array)
        for idx in np.ndindex(array.shape):
            old = array[idx]
            array[idx] = old + 1e-5
            up = loss(Z, gamma, beta)
            array[idx] = old - 1e-5
            down = loss(Z, gamma, beta)
            array[idx] = old
            numeric[idx] = (up - down) / 2e-5
        np.testing.assert_allclose(grad, numeric, **TOL["fd_inputs"])


@pytest.mark.parametrize(
    ("dropout", "batch_norm"),
    [(0.0, True), (0.3, False), (0.3, True), ([0.5, 0.0], [False, True])],
)
def test_model_gradients_match_finite_differences(rng, dropout, batch_norm):
    """In training mode the loss is a smooth function of the parameters for a fixed
    step (same dropout masks): its central differences are the gradients."""
    model = _model(dropout=dropout, batch_norm=batch_norm)
    X, y = _data(rng)
    loss, _, _ = model.gradients(X, y)
    grads = model.grads.copy()
    assert loss == model.loss(X, y)
    numeric = np.zeros_like(grads)
    for i in range(model.n_params):
        old = model.params[i]
        model.params[i] = old + 1e-6
        up = model.loss(X, y)
        model.params[i] = old - 1e-6
        down = model.loss(X, y)
        model.params[i] = old
        numeric[i] = (up - down) / 2e-6
    np.testing.assert_allclose(grads, numeric, **TOL["fd_params"])


def _reference_forward(model, X, training):
    """The network by hand from tests/reference.py, batch-normalized hidden layers."""
    A = X.astype(np.float64)
    stats = model.running_stats.astype(np.float64)
    for layer, (_, n_out, _, act, norm, so) in enumerate(model.layout):
        W = model.weights[layer].astype(np.float64)
        Z = A @ W + model.biases[layer]
        if norm:
            gamma, beta = (p.astype(np.float64) for p in model.norm_params(layer))
            if training:
                Z = reference.batch_norm_forward(Z, gamma, beta)[0]
            else:
                mean, var = stats[so : so + n_out], stats[so + n_out : so + 2 * n_out]
                Z = gamma * (Z - mean) / np.sqrt(var + model.bn_eps) + beta
        A = reference.activation(Z, int(act))
    return A


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_norm_forward_and_running_stats_match_reference(rng, dtype):
    model = _model(dtype=dtype, batch_norm=True, optimizer=fastnn.Adam(0.01))
    X, y = _data(rng, 12)
    Y = np.eye(3)[y]
    expected_loss = reference.cross_entropy(_reference_forward(model, X, True), Y)[0]
    assert_close(np.array(model.loss(X, y)), np.array(expected_loss), dtype)
    # one step moves the running statistics towards the batch's (unbiased variance)
    Z1 = X @ model.weights[0].astype(np.float64) + model.biases[0]
    model.train_step(X, y)
    m = model.bn_momentum
    assert_close(model.running_stats[:8], m * Z1.mean(0), dtype)
    assert_close(model.running_stats[8:16], (1 - m) + m * Z1.var(0, ddof=1), dtype)
    for _ in range(5):
        model.train_step(X, y)
    # predict uses the running statistics
    assert_close(model.predict(X), _reference_forward(model, X, False), dtype)
    assert model.predict(X).dtype == dtype


def test_matches_pytorch_batch_norm_and_sgd():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    model = fastnn.MLP([5, 8, 3], hidden="tanh", loss="mse", output="identity",
                       optimizer=fastnn.SGD(0.1, momentum=0.9), dtype="float64",
                       batch_norm=True, seed=1)  # fmt: skip
    net = torch.nn.Sequential(
        torch.nn.Linear(5, 8), torch.nn.BatchNorm1d(8, momentum=0.1, eps=1e-5),
        torch.nn.Tanh(), torch.nn.Linear(8, 3),
    ).double()  # fmt: skip
    with torch.no_grad():
        net[0].weight.copy_(torch.from_numpy(model.weights[0].T.copy()))
        net[0].bias.copy_(torch.from_numpy(model.biases[0]))
        net[3].weight.copy_(torch.from_numpy(model.weights[1].T.copy()))
        net[3].bias.copy_(torch.from_numpy(model.biases[1]))
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    for _ in range(4):
        X, Y = rng.standard_normal((6, 5)), rng.standard_normal((6, 3))
        loss = model.train_step(X, Y)
        opt.zero_grad()
        t_loss = torch.mean((net(torch.from_numpy(X)) - torch.from_numpy(Y)) ** 2)
        t_loss.backward()
        opt.step()
        assert loss == pytest.approx(t_loss.item(), rel=TOL["torch_loss"]["rtol"])
    gamma, beta = model.norm_params(0)
    np.testing.assert_allclose(gamma, net[1].weight.detach().numpy(), **TOL["torch"])
    np.testing.assert_allclose(beta, net[1].bias.detach().numpy(), **TOL["torch_beta"])
    np.testing.assert_allclose(model.weights[1], net[3].weight.detach().numpy().T,
                               **TOL["torch"])  # fmt: skip
    np.testing.assert_allclose(model.running_stats[:8], net[1].running_mean.numpy(),
                               **TOL["torch_params"])  # fmt: skip
    np.testing.assert_allclose(model.running_stats[8:], net[1].running_var.numpy(),
                               **TOL["torch"])  # fmt: skip
    net.eval()
    X = rng.standard_normal((4, 5))
    expected = net(torch.from_numpy(X)).detach().numpy()
    np.testing.assert_allclose(model.predict(X), expected, **TOL["torch_outputs"])


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dropout_kernel_drops_a_fraction_p_and_scales_the_rest(p, dtype):
    A = np.ones((200, 500), dtype)
    D = np.empty_like(A)
    kdrop.dropout_forward(A, D, kdrop.dropout_key(7, 3, 1), p)
    kept = D != 0
    assert abs(1 - kept.mean() - p) < 0.01
    np.testing.assert_allclose(D[kept], 1 / (1 - p), **TOL["dropout_scale"])
    G = np.ones_like(A)
    kdrop.dropout_backward(G, kdrop.dropout_key(7, 3, 1), p)
    np.testing.assert_array_equal(G, D)  # the same mask, the same scale
    other = np.empty_like(A)
    kdrop.dropout_forward(A, other, kdrop.dropout_key(7, 4, 1), p)
    assert not np.array_equal(other, D)  # the next step draws new masks


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dropout_masks_follow_the_documented_rule(dtype):
    """Unit ``(i, j)`` of an ``(n, m)`` block is kept when its uniform ``u``
    (:func:`reference.dropout_uniforms`) is at least ``p``, as floats (the kernel
    tests it on integers): at rates drawn at random and at rates on a unit's ``u``
    and just above it, where an off-by-one threshold would keep or drop it."""
    key = kdrop.dropout_key(7, 3, 1)
    A = np.ones((13, 7), dtype)
    u = reference.dropout_uniforms(key, A.shape)
    edge = u[(u > 0.05) & (u < 0.5)][:2]  # below 0.5, one ulp is below 2**-53
    rates = [0.2, 1 / 3, 0.5, 0.75, *edge, *np.nextafter(edge, 1.0)]
    for p in rates:
        D = np.empty_like(A)
        kdrop.dropout_forward(A, D, key, p)
        np.testing.assert_array_equal(D != 0, u >= p, err_msg=f"p = {p!r}")


def test_dropout_is_seeded_and_inactive_at_inference(rng):
    X, y = _data(rng)
    a, b, c = (_model(dropout=0.5, seed=s) for s in (1, 1, 2))
    plain = _model(seed=1)
    assert np.array_equal(a.predict(X), plain.predict(X))  # no dropout in predict
    assert a.eval().loss(X, y) == plain.loss(X, y)
    assert a.train().loss(X, y) != plain.loss(X, y)
    for model in (a, b, c):
        model.fit(X, y, epochs=5, batch_size=4)
    assert np.array_equal(a.params, b.params)
    assert not np.array_equal(a.params, c.params)


def test_gradients_see_the_masks_of_the_next_step(rng):
    model = _model(dropout=0.4, batch_norm=[True, False], optimizer=fastnn.SGD(0.5))
    X, y = _data(rng)
    _, dW, db = model.gradients(X, y)
    before = [w.copy() for w in model.weights]
    model.train_step(X, y)
    for W0, W1, g in zip(before, model.weights, dW, strict=True):
        np.testing.assert_allclose(W1, W0 - 0.5 * g, **TOL["one_update"])


def test_save_load_keeps_dropout_and_batch_norm(rng, tmp_path):
    X, y = _data(rng)
    model = _model(dtype="float32", dropout=[0.2, 0.3], batch_norm=True,
                   optimizer=fastnn.Adam(0.01), bn_momentum=0.2)  # fmt: skip
    model.fit(X, y, epochs=3, batch_size=4)
    model.save(tmp_path / "m.npz")
    loaded = fastnn.load(tmp_path / "m.npz")
    assert loaded.dropout == [0.2, 0.3] and loaded.batch_norm == [True, True]
    assert loaded.bn_momentum == 0.2
    np.testing.assert_array_equal(loaded.running_stats, model.running_stats)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    model.fit(X, y, epochs=2, batch_size=4)
    loaded.fit(X, y, epochs=2, batch_size=4)
    np.testing.assert_array_equal(loaded.params, model.params)
    np.testing.assert_array_equal(loaded.running_stats, model.running_stats)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"dropout": 1.0}, ValueError, "dropout"),
        ({"dropout": -0.1}, ValueError, "dropout"),
        ({"dropout": [0.1]}, ValueError, "1 values for 2 hidden layers"),
        ({"batch_norm": "yes"}, TypeError, "batch_norm"),
        ({"batch_norm": [True]}, ValueError, "1 values for 2 hidden layers"),
        ({"bn_momentum": 1.5}, ValueError, "bn_momentum"),
        ({"bn_eps": 0.0}, ValueError, "bn_eps"),
    ],
)
def test_bad_regularization_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        _model(**kwargs)


def test_batch_norm_needs_two_samples_per_training_batch(rng):
    model = _model(batch_norm=True)
    X, y = _data(rng, 9)
    with pytest.raises(ValueError, match="more than one sample"):
        model.train_step(X[:1], y[:1])
    with pytest.raises(ValueError, match="leave a batch of 1"):
        model.fit(X, y, batch_size=4)
    assert model.optimizer.step[0] == 0
    model.eval().loss(X[:1], y[:1])  # running statistics: one sample is fine
    model.predict(X[:1])


def test_deep_sigmoid_network_trains_only_with_batch_norm():
    """The primer's point: a 10-layer sigmoid network barely trains; with batch
    normalization it does."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[1] / "examples" / "deep_sigmoid.py"
    spec = importlib.util.spec_from_file_location("deep_sigmoid", path)
    deep_sigmoid = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(deep_sigmoid)
    plain, normed = deep_sigmoid.compare(epochs=15)
    assert plain.loss[-1] > 0.9 * plain.loss[0]
    assert normed.loss[-1] < 0.5 * normed.loss[0]
