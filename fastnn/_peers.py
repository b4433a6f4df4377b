"""The other implementations ``python -m fastnn bench`` times: NumPy, PyTorch, JAX.

:class:`NumpyMLP` is the network in plain NumPy. ``numpy_step``, ``floor_step`` (the
step's matmuls alone), ``torch_step`` and ``jax_step`` each build, from a
:class:`fastnn.bench.Case` and the fastnn model's initial weights, a ``step()`` that
takes one training step and returns its loss (None for the floor).
:mod:`fastnn.bench` re-exports them and lists them in its ``BUILDERS``.
"""

import numpy as np


class NumpyMLP:
    """The network in plain NumPy: the obvious, reasonably efficient code.

    Parameters are a list of ``W`` and a list of ``b`` arrays; the update follows
    PyTorch's SGD and Adam, in place.
    """

    def __init__(self, case, weights, biases):
        self.case = case
        self.W = [w.copy() for w in weights]
        self.b = [b.copy() for b in biases]
        self.m = [np.zeros_like(p) for p in self.W + self.b]
        self.v = [np.zeros_like(p) for p in self.W + self.b]
        self.t = 0

    def act(self, Z, name):
        if name == "relu":
            return np.maximum(Z, 0, out=Z)
        if name == "sigmoid":  # 1/(1+exp(-z)), written so exp cannot overflow
            return 0.5 * np.tanh(0.5 * Z) + 0.5
        if name == "tanh":
            return np.tanh(Z, out=Z)
        if name == "identity":
            return Z
        E = np.exp(Z - Z.max(axis=1, keepdims=True))  # softmax
        return E / E.sum(axis=1, keepdims=True)

    def step(self, X, Y):
        c, n = self.case, X.shape[0]
        names = [c.hidden] * (len(self.W) - 1) + [c.output]
        A = [X]
        for W, b, name in zip(self.W, self.b, names, strict=True):
            A.append(self.act(A[-1] @ W + b, name))
        P = A[-1]
        if c.loss == "cross_entropy":  # softmax output: dL/dZ = (P - Y) / n
            loss = -np.sum(Y * np.log(np.maximum(P, 1e-12))) / n
            dZ = (P - Y) / n
        else:  # mse on a sigmoid or identity output
            diff = P - Y
            loss = np.mean(diff * diff)
            dZ = (2 / P.size) * diff
            if c.output == "sigmoid":
                dZ *= P * (1 - P)
        grads_W, grads_b = [None] * len(self.W), [None] * len(self.W)
        for layer in range(len(self.W) - 1, -1, -1):
            grads_W[layer] = A[layer].T @ dZ
            grads_b[layer] = dZ.sum(axis=0)
            if layer > 0:
                dA = dZ @ self.W[layer].T
                Al = A[layer]
                dZ = dA * self.derivative(Al, c.hidden)
        self.update(self.W + self.b, grads_W + grads_b)
        return float(loss)

    @staticmethod
    def derivative(A, name):
        """The hidden activation's derivative, from its output."""
        if name == "relu":
            return A > 0
        if name == "tanh":
            return 1 - A * A
        return A * (1 - A)

    def update(self, params, grads):
        lr = self.case.lr
        if self.case.optimizer == "sgd":
            for p, g in zip(params, grads, strict=True):
                p -= lr * g
            return
        self.t += 1
        b1, b2, eps = 0.9, 0.999, 1e-8
        step_size = lr / (1 - b1**self.t)
        sqrt_bc2 = np.sqrt(1 - b2**self.t)
        for p, g, m, v in zip(params, grads, self.m, self.v, strict=True):
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * (g * g)
            p -= step_size * m / (np.sqrt(v) / sqrt_bc2 + eps)


def numpy_step(case, dtype, X, Y, weights, biases):
    net = NumpyMLP(case, weights, biases)
    return lambda: net.step(X, Y)


def floor_step(case, dtype, X, Y, weights, biases):
    """The step's matmuls alone, through BLAS into preallocated outputs."""
    n = X.shape[0]
    A = [X] + [np.empty((n, w.shape[1]), dtype) for w in weights]
    dZ = [np.ones((n, w.shape[1]), dtype) for w in weights]
    dW = [np.empty_like(w) for w in weights]
    dX = [None] + [np.empty((n, w.shape[0]), dtype) for w in weights[1:]]

    def step():
        for layer, W in enumerate(weights):
            np.matmul(A[layer], W, out=A[layer + 1])
        for layer in range(len(weights) - 1, -1, -1):
            np.matmul(A[layer].T, dZ[layer], out=dW[layer])
            if layer > 0:
                np.matmul(dZ[layer], weights[layer].T, out=dX[layer])
        return None  # no loss: nothing to compare

    return step


def torch_step(case, dtype, X, Y, weights, biases):
    import torch
    import torch.nn.functional as F

    params = [torch.tensor(p, requires_grad=True) for p in weights + biases]
    Ws, bs = params[: len(weights)], params[len(weights) :]
    Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)
    if case.optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=case.lr)
    else:
        opt = torch.optim.Adam(params, lr=case.lr)
    hidden = {"relu": torch.relu, "tanh": torch.tanh}.get(case.hidden, torch.sigmoid)
    output = torch.sigmoid if case.output == "sigmoid" else (lambda Z: Z)

    def step():
        A = Xt
        for i, (W, b) in enumerate(zip(Ws, bs, strict=True)):
            Z = torch.addmm(b, A, W)
            A = hidden(Z) if i < len(Ws) - 1 else Z
        if case.loss == "cross_entropy":  # logits + probability targets
            loss = F.cross_entropy(A, Yt)
        else:
            loss = F.mse_loss(output(A), Yt)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    return step


def jax_step(case, dtype, X, Y, weights, biases):
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)  # float64 arrays; float32 stays float32
    hidden = {"relu": jax.nn.relu, "tanh": jnp.tanh}.get(case.hidden, jax.nn.sigmoid)
    output = jax.nn.sigmoid if case.output == "sigmoid" else (lambda Z: Z)
    b1, b2, eps = 0.9, 0.999, 1e-8

    def loss_fn(params, X, Y):
        A = X
        for i, (W, b) in enumerate(params):
            Z = A @ W + b
            A = hidden(Z) if i < len(params) - 1 else Z
        if case.loss == "cross_entropy":
            return -jnp.sum(Y * jax.nn.log_softmax(A)) / X.shape[0]
        return jnp.mean((output(A) - Y) ** 2)

    def step(params, state, X, Y):
        value, grads = jax.value_and_grad(loss_fn)(params, X, Y)
        if case.optimizer == "sgd":
            params = jax.tree.map(lambda p, g: p - case.lr * g, params, grads)
            return params, state, value
        m, v, t = state
        t = t + 1
        m = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, m, grads)
        v = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g * g, v, grads)
        step_size = (case.lr / (1 - b1**t)).astype(dtype)
        sqrt_bc2 = jnp.sqrt(1 - b2**t).astype(dtype)
        params = jax.tree.map(
            lambda p, m, v: p - step_size * m / (jnp.sqrt(v) / sqrt_bc2 + eps),
            params,
            m,
            v,
        )
        return params, (m, v, t), value

    compiled = jax.jit(step, donate_argnums=(0, 1))
    params = [
        (jnp.asarray(W), jnp.asarray(b)) for W, b in zip(weights, biases, strict=True)
    ]
    zeros = jax.tree.map(jnp.zeros_like, params)
    state = [(zeros, jax.tree.map(jnp.zeros_like, params), jnp.zeros((), dtype))]
    box = [params]
    Xj, Yj = jnp.asarray(X), jnp.asarray(Y)

    def run():
        box[0], state[0], value = compiled(box[0], state[0], Xj, Yj)
        return float(value)

    return run
