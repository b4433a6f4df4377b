"""Time fastnn against plain NumPy, PyTorch and JAX on the same training steps.

Run ``python -m fastnn bench`` (or ``python -m fastnn.bench``); ``--help`` lists the
options. Every peer starts from the same initial weights (copied from the fastnn
model), trains on the same batch with the same optimizer, in one process, with the
same thread count. After a warm-up, each peer is timed in interleaved rounds (so
noise from a shared machine hits every peer alike) and the median per step is
reported. Columns:

``fastnn``  ``model.train_step(X, Y)``: the API, input validation included.
``kernel``  ``fastnn.kernels.network.train_step`` on the very arguments
            ``train_step`` passes it (checked once, beforehand): the compiled work
            alone.
``numpy``   the same network in plain NumPy (:class:`fastnn._peers.NumpyMLP`).
``torch``   PyTorch eager: ``addmm`` layers, ``backward()``, ``torch.optim``.
``jax``     one ``jax.jit``-compiled function per step (forward, grad, update).
``floor``   only the step's matmuls, through NumPy's BLAS into preallocated
            outputs: ``X @ W`` per layer, then ``X.T @ dZ`` and ``dZ @ W.T`` (not in
            the first layer). No step can beat it by much.
``fit``     ``model.fit`` for whole epochs (``shuffle=False``), per step.

``--predict`` adds ``predict`` against onnxruntime (:mod:`fastnn._bench_predict`).

Threads: on Linux the process is first pinned to ``--threads`` CPUs
(``os.sched_setaffinity``; the pools the peers start later inherit it, so no library
can use more cores than asked). fastnn runs on that many threads
(:func:`fastnn.set_num_threads`; data-parallel steps for large batches, row blocks
for ``predict``). BLAS and OpenMP pools are limited with threadpoolctl, PyTorch with
``torch.set_num_threads``. XLA has no setting for a number of threads:
for one, ``--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1`` is put
in ``XLA_FLAGS`` before JAX is imported (if it is not imported yet and ``XLA_FLAGS``
is unset); for more, JAX uses its default, a pool as large as the machine. Even with
the flags, XLA runs its steps on two threads here: the pinning holds it to one core.
"""

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass

import numpy as np

import fastnn
from fastnn._bench_predict import (
    format_predict_table,
    import_onnxruntime,
    run_predict,
)
from fastnn._bench_report import (
    format_table,
    machine_info,
)
from fastnn._peers import (
    floor_step,
    jax_step,
    numpy_step,
    torch_step,
)


@dataclass(frozen=True)
class Case:
    """One benchmark network: its shape, loss, optimizer and batch size."""

    name: str
    batch: int
    sizes: tuple
    hidden: str
    output: str
    loss: str
    optimizer: str  # "sgd" or "adam"
    lr: float
    fit_samples: int  # rows of the data set a fit epoch runs over
    fit_epochs: int  # epochs per timed fit call

    def model(self, dtype):
        """A fresh ``fastnn.MLP`` for this case (seed 0: always the same weights)."""
        opt = fastnn.SGD(self.lr) if self.optimizer == "sgd" else fastnn.Adam(self.lr)
        return fastnn.MLP(
            list(self.sizes),
            hidden=self.hidden,
            output=self.output,
            loss=self.loss,
            optimizer=opt,
            dtype=dtype,
            seed=0,
        )

    def data(self, dtype, n_samples=None, seed=1):
        """Inputs and targets: ``X (n, n_in)``, ``Y (n, n_out)`` (one-hot for CE).

        Inputs are standardized (zero mean, unit variance), as one would feed a
        network. With all-positive inputs (say uniform in [0, 1)) about half the relu
        units are off for every sample of a batch, their weights get exactly zero
        gradients, and Adam's first moment for them decays into subnormal numbers
        after ~750 float32 steps, which slows every implementation down by a
        different amount; a step-time benchmark should not depend on that.
        """
        n = self.batch if n_samples is None else n_samples
        n_in, n_out = self.sizes[0], self.sizes[-1]
        rng = np.random.default_rng(seed)
        if self.name == "xor":
            X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])[np.arange(n) % 4]
            Y = (X[:, :1] != X[:, 1:]).astype(int)
        elif self.loss == "cross_entropy":
            X = rng.standard_normal((n, n_in))
            Y = np.eye(n_out)[rng.integers(0, n_out, n)]
        else:
            X, Y = rng.standard_normal((n, n_in)), rng.random((n, n_out))
        return X.astype(dtype), Y.astype(dtype)


MSE = ("sigmoid", "sigmoid", "mse")  # hidden, output, loss
CE = ("relu", "softmax", "cross_entropy")
CASES = {
    c.name: c
    for c in [
        # name, batch, sizes, hidden/output/loss, optimizer, lr, fit rows, fit epochs
        Case("xor", 4, (2, 4, 1), *MSE, "sgd", 0.1, 256, 16),
        Case("tiny100", 4, (100, 100, 100), *MSE, "sgd", 0.1, 256, 4),
        Case("mnist64", 64, (784, 128, 10), *CE, "adam", 1e-3, 2048, 1),
        Case("wide1024", 1024, (512, 512, 10), *CE, "adam", 1e-3, 4096, 1),
        Case("online1", 1, (784, 128, 10), *CE, "sgd", 0.01, 256, 1),
        # SimpleChains.jl's README network, less its dropout (the peers could not
        # share the masks): asv's SimpleChainsGradients times it with dropout
        Case("sc24", 200, (24, 8, 2), "tanh", "identity", "mse", "sgd", 0.01, 2000, 1),
    ]
}
DTYPES = ("float32", "float64")
PEERS = ("fastnn", "kernel", "numpy", "torch", "jax", "floor", "fit")


# -- peers: each builds from the case and initial weights, and returns step() -> loss
# (numpy, floor, torch and jax are in fastnn._peers)


def fastnn_step(case, dtype, X, Y):
    model = case.model(dtype)
    return lambda: model.train_step(X, Y)


def kernel_step(case, dtype, X, Y):
    """``kernels.network.train_step`` on the arguments the API would pass it."""
    kernel, args = case.model(dtype).step_arguments(X, Y)

    def step():
        return kernel(*args)

    step.first_loss = float(step())  # the first step, which also compiles it
    return step


def fit_step(case, dtype, X, Y):
    """One timed call: ``fit_epochs`` epochs over ``fit_samples`` rows; per step."""
    model = case.model(dtype)
    Xf, Yf = case.data(dtype, case.fit_samples)
    steps = case.fit_epochs * -(-case.fit_samples // case.batch)

    def run():
        model.fit(
            Xf,
            Yf,
            epochs=case.fit_epochs,
            batch_size=case.batch,
            shuffle=False,
            verbose=0,
        )
        return None  # no loss: nothing to compare

    run.steps = steps
    return run


BUILDERS = {
    "fastnn": fastnn_step,
    "kernel": kernel_step,
    "fit": fit_step,
    "numpy": numpy_step,
    "floor": floor_step,
    "torch": torch_step,
    "jax": jax_step,
}
OPTIONAL = {"torch": "torch", "jax": "jax"}  # peer -> module it needs


# -- timing ------------------------------------------------------------------------


def _calibrate(fn, min_time):
    """Calls per timed round so that a round lasts about ``min_time`` seconds."""
    number = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        elapsed = time.perf_counter() - t0
        if elapsed >= min_time or number >= 1 << 20:
            return number
        number = max(number * 2, int(number * min_time / max(elapsed, 1e-9)))


def time_case(case, dtype, peers, rounds, min_time, warmup):
    """Median seconds per step of each peer on one case and dtype.

    Returns ``(times, status, first_loss)``, dicts keyed by peer.
    """
    X, Y = case.data(dtype)
    ref = case.model(dtype)
    weights = [w.copy() for w in ref.weights]
    biases = [b.copy() for b in ref.biases]
    fns, status, first_loss = {}, {}, {}
    for peer in peers:
        module = OPTIONAL.get(peer)
        if module is not None and not _available(module):
            status[peer] = "missing"
            continue
        try:
            build = BUILDERS[peer]
            extra = () if peer in ("fastnn", "kernel", "fit") else (weights, biases)
            fn = build(case, dtype, X, Y, *extra)
            value = getattr(fn, "first_loss", None)
            if value is None:
                value = fn()  # the loss before any update
            if value is not None:
                first_loss[peer] = float(value)
            for _ in range(warmup):
                fn()
        except Exception as err:  # report and go on: one broken peer spoils nothing
            if peer == "fastnn":
                raise
            status[peer] = f"error: {type(err).__name__}: {err}".splitlines()[0]
            continue
        fns[peer] = fn
        status[peer] = "ok"
    numbers = {p: _calibrate(fn, min_time) for p, fn in fns.items()}
    samples = {p: [] for p in fns}
    for _ in range(rounds):
        for peer, fn in fns.items():
            number = numbers[peer]
            t0 = time.perf_counter()
            for _ in range(number):
                fn()
            elapsed = time.perf_counter() - t0
            samples[peer].append(elapsed / number / getattr(fn, "steps", 1))
    times = {p: statistics.median(s) for p, s in samples.items()}
    return times, status, first_loss


def _available(module):
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _limit_threads(threads, peers):
    """Pin the process to ``threads`` CPUs, import the peers, limit their pools.

    Returns ``(restore, info)``: a function that undoes what can be undone, and what
    was set (the CPUs, and threadpoolctl's view of the pools).
    """
    cpus, pinned = None, None
    if hasattr(os, "sched_setaffinity"):  # Linux: threads created later inherit it
        cpus = os.sched_getaffinity(0)
        pinned = sorted(cpus)[:threads]
        os.sched_setaffinity(0, pinned)
    if (
        threads == 1
        and "jax" in peers
        and "jax" not in sys.modules
        and "XLA_FLAGS" not in os.environ
    ):  # XLA has no flag for N threads; with more than one it uses every core
        flags = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
        os.environ["XLA_FLAGS"] = flags
    for peer in peers:
        if peer in OPTIONAL and _available(OPTIONAL[peer]):
            try:
                __import__(OPTIONAL[peer])
            except Exception:  # the peer reports the error when it is built
                pass
    torch = sys.modules.get("torch")
    torch_threads = torch.get_num_threads() if torch else None
    if torch:
        torch.set_num_threads(threads)
        try:
            torch.set_num_interop_threads(threads)
        except RuntimeError:  # only allowed once, before any parallel work
            pass
    import scipy.linalg.cython_blas  # noqa: F401  (the BLAS that Numba's np.dot calls)
    from threadpoolctl import threadpool_info, threadpool_limits

    limits = threadpool_limits(threads)
    chosen = fastnn._threads._chosen
    fastnn.set_num_threads(min(threads, fastnn._threads._max_threads()))

    def restore():
        limits.restore_original_limits()
        fastnn.set_num_threads(chosen)
        if torch:
            torch.set_num_threads(torch_threads)
        if cpus is not None:
            os.sched_setaffinity(0, cpus)

    return restore, {"cpus": pinned, "pools": threadpool_info()}


# -- command line ------------------------------------------------------------------


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="python -m fastnn bench",
        description="Time fastnn's training step against NumPy, PyTorch and JAX.",
    )
    p.add_argument(
        "--cases",
        default=",".join(CASES),
        help=f"comma-separated, from {', '.join(CASES)} (default: all)",
    )
    p.add_argument("--dtypes", default=",".join(DTYPES), help="float32,float64")
    p.add_argument(
        "--peers",
        default=",".join(PEERS),
        help=f"comma-separated, from {', '.join(PEERS)} (default: all)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="threads for BLAS, OpenMP, PyTorch and XLA (default 1)",
    )
    p.add_argument("--rounds", type=int, help="timed rounds per peer (default 15)")
    p.add_argument("--quick", action="store_true", help="few, short rounds")
    p.add_argument("--json", metavar="FILE", help="also write the numbers as JSON")
    for flag, text in (("--predict", "also time"), ("--predict-only", "only time")):
        p.add_argument(flag, action="store_true",
                       help=f"{text} predict against onnxruntime")  # fmt: skip
    args = p.parse_args(argv)
    for name, choices in (("cases", CASES), ("dtypes", DTYPES), ("peers", PEERS)):
        items = [s.strip() for s in getattr(args, name).split(",") if s.strip()]
        bad = [s for s in items if s not in choices]
        if bad or not items:
            p.error(
                f"--{name}: unknown {bad or 'empty list'}; choose from {list(choices)}"
            )
        setattr(args, name, items)
    if "fastnn" not in args.peers:
        args.peers.insert(0, "fastnn")
    if args.threads < 1:
        p.error("--threads must be at least 1")
    return args


def run(args):
    """Time every case, dtype and peer; returns the JSON-ready report."""
    rounds = args.rounds or (3 if args.quick else 15)
    min_time, warmup = (0.005, 3) if args.quick else (0.05, 20)
    restore, pinned = _limit_threads(args.threads, args.peers)
    if args.predict or args.predict_only:
        import_onnxruntime()  # so that machine_info reports its version
    meta = machine_info(args.threads, pinned)
    results, predict = [], None
    try:
        if args.predict or args.predict_only:
            predict = run_predict(args.threads, rounds, min_time, warmup)
        for dtype in args.dtypes if not args.predict_only else ():
            for name in args.cases:
                times, status, losses = time_case(
                    CASES[name], dtype, args.peers, rounds, min_time, warmup
                )
                results.append(
                    {
                        "case": name,
                        "dtype": dtype,
                        "us_per_step": {p: t * 1e6 for p, t in times.items()},
                        "status": status,
                        "first_loss": losses,
                    }
                )
    finally:
        restore()
    report = {
        "meta": meta,
        "rounds": rounds,
        "results": results,
    }
    if predict is not None:
        report["predict"] = predict
    return report


def main(argv=None):
    """Entry point of ``python -m fastnn bench``; returns the exit status."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    report = run(args)
    meta = report["meta"]
    print(
        f"fastnn bench on {meta['cpu']} ({meta['logical_cpus']} logical CPUs), "
        f"{meta['threads']} thread(s); "
        + ", ".join(f"{k} {v}" for k, v in meta["versions"].items() if v)
    )
    for dtype in args.dtypes if not args.predict_only else ():
        print()
        print(format_table(report["results"], dtype, meta, report["rounds"]))
    if "predict" in report:
        print()
        print(format_predict_table(report["predict"], args.threads, report["rounds"]))
    for r in report["results"]:
        loss0 = r["first_loss"].get("fastnn")
        for peer, value in r["first_loss"].items():
            tol = 1e-3 if r["dtype"] == "float32" else 1e-6
            if np.isfinite(value) and abs(value - loss0) > tol * max(1.0, abs(loss0)):
                print(
                    f"warning: {r['case']} {r['dtype']}: {peer}'s first loss "
                    f"{value:.6g} differs from fastnn's {loss0:.6g}"
                )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
