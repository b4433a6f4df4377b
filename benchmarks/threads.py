"""Threads and fastnn, measured: predict from several Python threads, and BLAS's own
threads in the training step.

Default mode: predict throughput of one shared model from 1 and from 2 (or more)
Python threads. ``MLP.predict`` runs in compiled code that releases the GIL, so the
callers should scale with the cores. Each thread makes its own calls on its own input
for a fixed time; BLAS is held to one thread (``OPENBLAS_NUM_THREADS=1``, set before
NumPy loads) so that the only parallelism is the callers'. Prints calls per second
(median of ``--repeat`` runs), the speed-up over one thread, and the process's CPU
seconds per wall second (``cpuN``: above 1 means the threads ran at the same time,
which a GIL held during the call would prevent, even when other work on the machine
takes the cores that would have made it faster).

``--own``: fastnn's own threads (``fastnn.threads``): ``train_step``, ``fit`` per
step and ``predict`` of 10 000 rows per case of ``fastnn.bench.CASES``, at each
thread count, in interleaved rounds of one process (BLAS held to one thread by
fastnn's guard, as by default).

``--blas``: ``train_step`` per case of ``fastnn.bench.CASES``, BLAS at one thread
(threadpoolctl) against its default (``OPENBLAS_NUM_THREADS`` must be unset), in
interleaved rounds of one process, with fastnn's one-BLAS-thread guard
(``fastnn.kernels.blas.ONE_BLAS_THREAD``) on and off. Needs threadpoolctl.

    python benchmarks/threads.py [--threads 1,2] [--seconds 1.0] [--repeat 3]
    python benchmarks/threads.py --own [--threads 1,2] [--repeat 5]
    python benchmarks/threads.py --blas [--repeat 11]

Timings, so they live here and not in the tests; on a shared machine, run them when
the machine is quiet (both print the load average).
"""

import os
import sys

if "--blas" not in sys.argv and "--own" not in sys.argv:
    os.environ["OPENBLAS_NUM_THREADS"] = "1"  # before NumPy loads OpenBLAS
    os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

import fastnn  # noqa: E402
from fastnn.kernels import blas  # noqa: E402

# (name, sizes, hidden, output, loss, batch)
CASES = [
    ("xor", (2, 4, 1), "sigmoid", "sigmoid", "mse", 4),
    ("tiny100", (100, 100, 100), "sigmoid", "sigmoid", "mse", 4),
    ("online1", (784, 128, 10), "relu", "softmax", "cross_entropy", 1),
    ("mnist64", (784, 128, 10), "relu", "softmax", "cross_entropy", 64),
    ("wide1024", (512, 512, 10), "relu", "softmax", "cross_entropy", 1024),
]


def load_average():
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def throughput(model, inputs, seconds):
    """Calls per second of ``model.predict`` from ``len(inputs)`` threads, and the
    process's CPU time over the wall time (above 1 only if threads ran at once)."""
    n_threads = len(inputs)
    barrier = threading.Barrier(n_threads + 1)
    stop = threading.Event()
    counts = [0] * n_threads

    def run(i):
        X = inputs[i]
        barrier.wait()
        n = 0
        while not stop.is_set():
            model.predict(X)
            n += 1
        counts[i] = n

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    barrier.wait()
    t0, cpu0 = time.perf_counter(), time.process_time()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    return sum(counts) / wall, (time.process_time() - cpu0) / wall


def _spin(n):
    total = 0
    for i in range(n):
        total += i
    return total


def machine_parallelism(n_procs, n=5_000_000):
    """How many times the work of one process ``n_procs`` processes get done in the
    same time: what the machine allows, whatever fastnn does."""
    import multiprocessing

    t0 = time.perf_counter()
    _spin(n)
    one = time.perf_counter() - t0
    procs = [multiprocessing.Process(target=_spin, args=(n,)) for _ in range(n_procs)]
    t0 = time.perf_counter()
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    return n_procs * one / (time.perf_counter() - t0)


def predict_threads(args):
    counts = [int(s) for s in args.threads.split(",")]
    names = args.cases.split(",")
    print(
        f"predict throughput (calls/s), {args.dtype}, OPENBLAS_NUM_THREADS=1, "
        f"{os.cpu_count()} logical CPUs, load average {load_average()}"
    )
    print(
        "the machine: "
        + ", ".join(
            f"{n} busy processes do {machine_parallelism(n):.2f}x the work of one"
            for n in counts[1:]
        )
    )
    header = f"{'case':<10}{'batch':>6}" + "".join(f"{f'{n} thr':>12}" for n in counts)
    header += "".join(f"{f'x{n}':>8}" for n in counts[1:])
    print(header + "".join(f"{f'cpu{n}':>8}" for n in counts))
    for name, sizes, hidden, output, loss, batch in CASES:
        if name not in names:
            continue
        model = fastnn.MLP(
            list(sizes), hidden=hidden, output=output, loss=loss,
            dtype=args.dtype, seed=0,
        )  # fmt: skip
        rng = np.random.default_rng(0)
        inputs = [
            rng.standard_normal((batch, sizes[0])).astype(args.dtype)
            for _ in range(max(counts))
        ]
        model.predict(inputs[0])  # compile (or load) outside the clock
        rates, cpus = {}, {}
        for n in counts:
            runs = [
                throughput(model, inputs[:n], args.seconds) for _ in range(args.repeat)
            ]
            rates[n] = statistics.median(r for r, _ in runs)
            cpus[n] = statistics.median(c for _, c in runs)
        line = f"{name:<10}{batch:>6}" + "".join(f"{rates[n]:>12,.0f}" for n in counts)
        line += "".join(f"{rates[n] / rates[counts[0]]:>8.2f}" for n in counts[1:])
        print(line + "".join(f"{cpus[n]:>8.2f}" for n in counts))


def _per_call(fn, number):
    t0 = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - t0) / number


def blas_threads(args):
    from threadpoolctl import threadpool_info, threadpool_limits

    from fastnn.bench import CASES as BENCH_CASES

    if any(os.environ.get(name) for name in blas._THREAD_VARIABLES):
        sys.exit("unset OPENBLAS_NUM_THREADS, OMP_NUM_THREADS, ... to measure this")
    names = args.cases.split(",")
    rounds = max(args.repeat, 5)
    fastnn.MLP([2, 2]).train_step(np.ones((1, 2)), np.ones((1, 2)))  # load BLAS
    pools = ", ".join(
        f"{p['internal_api']} {p['num_threads']} ({os.path.basename(p['filepath'])})"
        for p in threadpool_info()
    )
    print(f"train_step, median µs over {rounds} interleaved rounds; BLAS: {pools}")
    print(f"load average {load_average()}")
    print(f"{'':<16}{'guard off':^30}{'guard on':^30}")
    sub = f"{'1 thread':>10}{'default':>10}{'ratio':>10}"
    print(f"{'case':<10}{'dtype':<8}{sub}{sub}")
    for dtype in args.dtype.split(","):
        for name, case in BENCH_CASES.items():
            if name not in names:
                continue
            X, Y = case.data(dtype)
            cells = []
            for guard in (False, True):
                blas.ONE_BLAS_THREAD = guard
                model = case.model(dtype)

                def step(model=model, X=X, Y=Y):
                    model.train_step(X, Y)

                for _ in range(10):
                    step()
                number = max(1, int(0.02 / _per_call(step, 3)))
                one, default = [], []
                for _ in range(rounds):
                    with threadpool_limits(1, user_api="blas"):
                        one.append(_per_call(step, number))
                    default.append(_per_call(step, number))
                a, b = statistics.median(one) * 1e6, statistics.median(default) * 1e6
                cells.append(f"{a:>10.1f}{b:>10.1f}{b / a:>10.2f}")
            print(f"{name:<10}{dtype:<8}" + "".join(cells))
    blas.ONE_BLAS_THREAD = True


def own_threads(args):
    """fastnn's own threads: ``train_step`` of each bench case, ``fit`` per step and
    ``predict`` of 10 000 rows, at each thread count (``fastnn.threads``), in
    interleaved rounds of one process."""
    from fastnn.bench import CASES as BENCH_CASES

    counts = [int(s) for s in args.threads.split(",")]
    rounds = max(args.repeat, 5)
    print(
        f"fastnn's threads, median µs over {rounds} interleaved rounds, {args.dtype}, "
        f"load average {load_average()}"
    )
    print(f"{'call':<22}{'shards':>7}" + "".join(f"{f'{n} thr':>11}" for n in counts)
          + "".join(f"{f'x{n}':>7}" for n in counts[1:]))  # fmt: skip
    for name in args.cases.split(","):
        if name in BENCH_CASES:
            for label, shards, median in _own_case(BENCH_CASES[name], args.dtype,
                                                   counts, rounds):  # fmt: skip
                print(f"{label:<22}{shards:>7}"
                      + "".join(f"{median[n]:>11.1f}" for n in counts)
                      + "".join(f"{median[counts[0]] / median[n]:>7.2f}"
                                for n in counts[1:]))  # fmt: skip


def _own_case(case, dtype, counts, rounds):
    """(label, shards, {threads: median µs}) of each call of one case."""
    X, Y = case.data(dtype)
    Xf, Yf = case.data(dtype, case.fit_samples)
    Xp = case.data(dtype, 10_000)[0]
    model = case.model(dtype)
    steps = case.fit_epochs * -(-case.fit_samples // case.batch)
    buffers = model.shards(case.batch)
    shards = "" if buffers is None else str(len(buffers.cuts) - 1)

    def fit():
        model.fit(Xf, Yf, epochs=case.fit_epochs, batch_size=case.batch, shuffle=False)

    calls = [
        (f"{case.name} train_step", lambda: model.train_step(X, Y), 1, shards),
        (f"{case.name} fit (per step)", fit, steps, shards),
        (f"{case.name} predict 10000", lambda: model.predict(Xp), 1, ""),
    ]
    for label, call, per, n_shards in calls:
        call()
        number = max(1, int(0.05 / _per_call(call, 1)))
        times = {n: [] for n in counts}
        for _ in range(rounds):
            for n in counts:
                with fastnn.threads(n):
                    times[n].append(_per_call(call, number) / per * 1e6)
        yield label, n_shards, {n: statistics.median(t) for n, t in times.items()}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--blas", action="store_true", help="BLAS threads in train_step")
    p.add_argument("--own", action="store_true", help="fastnn's own threads")
    p.add_argument("--threads", default="1,2", help="thread counts (default 1,2)")
    p.add_argument("--seconds", type=float, default=1.0, help="per measurement")
    p.add_argument("--repeat", type=int, default=3, help="runs; the median is shown")
    p.add_argument("--dtype", default=None, help="float32 (--blas: float32,float64)")
    p.add_argument("--cases", default=",".join(c[0] for c in CASES))
    args = p.parse_args(argv)
    if args.blas:
        args.dtype = args.dtype or "float32,float64"
        blas_threads(args)
    elif args.own:
        args.dtype = args.dtype or "float32"
        args.cases = args.cases.replace("online1,", "")
        own_threads(args)
    else:
        args.dtype = args.dtype or "float32"
        predict_threads(args)


if __name__ == "__main__":
    main()
