"""The model API: a training step, a compiled fit epoch, predict.

The networks are ``fastnn.bench.CASES``, the same ones ``python -m fastnn bench``
compares against NumPy, PyTorch and JAX:

========  =====  ==============  ==========================  ========
case      batch  sizes           hidden, output + loss       optimizer
========  =====  ==============  ==========================  ========
xor       4      2, 4, 1         sigmoid, sigmoid + mse      SGD(0.1)
tiny100   4      100, 100, 100   sigmoid, sigmoid + mse      SGD(0.1)
mnist64   64     784, 128, 10    relu, softmax + CE          Adam(1e-3)
wide1024  1024   512, 512, 10    relu, softmax + CE          Adam(1e-3)
online1   1      784, 128, 10    relu, softmax + CE          SGD(0.01)
sc24      200    24, 8, 2        tanh, identity + mse        SGD(0.01)
========  =====  ==============  ==========================  ========
"""

import numpy as np

from fastnn.bench import CASES

DTYPES = ["float32", "float64"]


class TrainStep:
    """One optimizer step: through ``MLP.train_step`` (input checks included) and
    through the compiled kernel alone, on the arguments ``train_step`` passes it
    (``MLP.step_arguments``)."""

    params = [list(CASES), DTYPES]
    param_names = ["case", "dtype"]

    def setup(self, case, dtype):
        c = CASES[case]
        self.X, self.Y = data = c.data(dtype)
        self.model = c.model(dtype)
        self.model.train_step(self.X, self.Y)  # compile outside the timing
        self.kernel, self.kernel_args = c.model(dtype).step_arguments(*data)
        self.kernel(*self.kernel_args)  # compile outside the timing

    def time_train_step(self, case, dtype):
        self.model.train_step(self.X, self.Y)

    def time_kernel_step(self, case, dtype):
        self.kernel(*self.kernel_args)


class FitEpoch:
    """``model.fit`` over ``fit_samples`` rows in batches of the case's size, for
    ``fit_epochs`` epochs without shuffling: the whole loop runs compiled.

    The time is per call; divide by the number of steps (``fit_epochs *
    fit_samples / batch``: 1024, 256, 32, 4, 256, 10 for the six cases) for a step.
    """

    params = [list(CASES), DTYPES]
    param_names = ["case", "dtype"]

    def setup(self, case, dtype):
        c = self.case = CASES[case]
        self.X, self.Y = c.data(dtype, c.fit_samples)
        self.model = c.model(dtype)
        if not hasattr(self.model, "fit"):
            raise NotImplementedError("this version of fastnn has no MLP.fit")
        self.time_fit(case, dtype)

    def time_fit(self, case, dtype):
        c = self.case
        self.model.fit(self.X, self.Y, epochs=c.fit_epochs, batch_size=c.batch,
                       shuffle=False, verbose=0)  # fmt: skip


class Predict:
    """``model.predict`` on the MNIST-shaped network (784-128-10, relu, softmax):
    throughput on 4096 samples (samples/s = 4096 / time) and latency on one."""

    params = [DTYPES]
    param_names = ["dtype"]
    BATCH = 4096

    def setup(self, dtype):
        c = CASES["mnist64"]
        self.model = c.model(dtype)
        self.X, _ = c.data(dtype, self.BATCH)
        self.x1 = self.X[:1].copy()
        self.model.predict(self.X)
        self.model.predict(self.x1)

    def time_predict_batch(self, dtype):
        self.model.predict(self.X)

    def time_predict_one(self, dtype):
        self.model.predict(self.x1)


class SimpleChainsGradients:
    """Loss and gradients of SimpleChains.jl's README network, per call: 24-8-2, tanh
    hidden with dropout 0.2, identity output, MSE, batch 200, float64. SimpleChains
    reports 5.7 µs for it and Flux 96 µs, on its authors' machine (not this one).
    ``time_gradients`` is the API (``model.gradients``, input checks and copies of
    the gradients included), ``time_kernel`` the compiled call alone
    (``MLP.step_arguments`` in gradient mode)."""

    def setup(self):
        import fastnn
        from fastnn.kernels import network as knet

        rng = np.random.default_rng(0)
        self.X, self.Y = rng.standard_normal((200, 24)), rng.standard_normal((200, 2))
        self.model = fastnn.MLP(
            [24, 8, 2], hidden="tanh", output="identity", loss="mse", dropout=0.2,
            dtype="float64", seed=0,
        )  # fmt: skip
        self.model.gradients(self.X, self.Y)  # compile outside the timing
        if not hasattr(self.model, "step_arguments"):
            raise NotImplementedError("this version of fastnn has no step_arguments")
        self.kernel, self.args = self.model.step_arguments(
            self.X, self.Y, mode=knet.TRAINING
        )
        self.kernel(*self.args)

    def time_gradients(self):
        self.model.gradients(self.X, self.Y)

    def time_kernel(self):
        self.kernel(*self.args)


class Threads:
    """fastnn's own threads (``fastnn.threads(n)``): ``train_step``, ``fit`` (one
    epoch over ``fit_samples`` rows) and ``predict`` of 10 000 rows, at 1 and 2
    threads, float32. wide1024's batch is cut into shards; mnist64's is not (see the
    threads page of the docs)."""

    params = [["mnist64", "wide1024"], [1, 2]]
    param_names = ["case", "threads"]

    def setup(self, case, threads):
        import fastnn

        if not hasattr(fastnn, "threads"):
            raise NotImplementedError("this version of fastnn has no fastnn.threads")
        c = self.case = CASES[case]
        self.X, self.Y = c.data("float32")
        self.Xf, self.Yf = c.data("float32", c.fit_samples)
        self.Xp = c.data("float32", 10_000)[0]
        self.model = c.model("float32")
        self.model.train_step(self.X, self.Y)  # compile outside the timing
        self.model.predict(self.Xp)
        self.time_fit(case, threads)
        try:  # last: teardown, which undoes it, runs only after a whole setup
            self.threads = fastnn.threads(threads)
            self.threads.__enter__()
        except ValueError as err:  # more than Numba's NUMBA_NUM_THREADS here
            raise NotImplementedError(str(err)) from err

    def teardown(self, case, threads):
        self.threads.__exit__(None, None, None)

    def time_train_step(self, case, threads):
        self.model.train_step(self.X, self.Y)

    def time_fit(self, case, threads):
        c = self.case
        self.model.fit(self.Xf, self.Yf, epochs=1, batch_size=c.batch, shuffle=False)

    def time_predict(self, case, threads):
        self.model.predict(self.Xp)
