"""The parts of a data-parallel training step, and a model of its speed-up by cores.

A sharded step (:mod:`fastnn._shards`) is: each shard's forward and backward into
its own gradient buffer (in parallel over shards), then the weighted sum of the
shard gradients and the optimizer update (on the calling thread), plus the Python
around them and one hand-off to fastnn's thread pool.

This script times the whole step at one thread, the sum, the update and a round trip
through the pool with nothing to do (``launch``), each alone, and takes a
shard's time as what the step spends beyond the sum and the update, divided by the
shards (a shard timed alone, on warm caches, is faster than inside a step). It then
models the step on ``p`` cores as::

    T(p) = launch + ceil(shards / p) * shard + sum + update

(``launch`` is 0 at one thread). The model assumes that a shard runs as fast beside
others as alone (no shared memory bandwidth or cache), so it is an upper bound; the
measured steps at 1 and 2 threads are printed beside it.

    python benchmarks/shards.py [--cases wide1024,mnist1024] [--dtype float32]

Timings, so they live here and not in the tests; run it on a quiet machine.
"""

import argparse
import math
import statistics
import time

import fastnn
from fastnn import _threads
from fastnn.bench import CASES
from fastnn.kernels.optimizers import optimizer_update
from fastnn.kernels.shards import sum_shards

# the bench cases, and the MNIST network at a batch large enough to be sharded
EXTRA = {"mnist1024": (CASES["mnist64"], 1024)}
CORES = (1, 2, 4, 8, 16)


def per_call(fn, seconds=0.2, repeat=7):
    """Median seconds per call of ``fn`` over ``repeat`` rounds."""
    fn()
    number = max(1, int(seconds / max(_once(fn), 1e-7) / repeat))
    rounds = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        rounds.append((time.perf_counter() - t0) / number)
    return statistics.median(rounds)


def _once(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def parts(case, batch, dtype):
    """Seconds of each part of one sharded step, and of whole steps at 1 and 2
    threads."""
    model = case.model(dtype)
    X, Y = case.data(dtype, batch)
    buffers = model.shards(batch)
    if buffers is None:
        return None
    shards = len(buffers.cuts) - 1
    model.gradients(X, Y)  # every shard's buffer holds gradients
    saved = model.params.copy(), model.optimizer.state.copy()
    with model.blas_guard(batch):
        total = per_call(lambda: sum_shards(buffers.grads, buffers.scales, model.grads))
        no_backup = model.params[:0]
        state = model.optimizer.kernel_state
        update = per_call(
            lambda: optimizer_update(
                state, model.params, model.grads, model.layout, no_backup
            )  # fmt: skip
        )
    model.params[...] = saved[0]  # undo the updates
    model.optimizer.state[...] = saved[1]
    launch = per_call(lambda: _threads.map_items(lambda i: time.sleep(0), 2, 2))
    steps = {}
    for n in (1, 2):
        with fastnn.threads(min(n, _threads._max_threads())):
            steps[n] = per_call(lambda: model.train_step(X, Y))
    return {"shards": shards, "sum": total, "update": update,
            "launch": launch, "step1": steps[1], "step2": steps[2]}  # fmt: skip


def model_time(p, part):
    """The modelled seconds of a step on ``p`` cores (see the module docstring)."""
    shards, total, update = part["shards"], part["sum"], part["update"]
    shard = (part["step1"] - total - update) / shards
    launch = part["launch"] if p > 1 else 0.0
    return launch + math.ceil(shards / p) * shard + total + update


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", default="wide1024,mnist1024")
    p.add_argument("--dtype", default="float32")
    args = p.parse_args(argv)
    print(f"parts of a sharded train_step, µs, {args.dtype}, one thread each")
    head = f"{'case':<10}{'shards':>7}{'shard':>9}{'sum':>8}{'update':>8}{'launch':>8}"
    print(head + f"{'1 thr':>9}{'2 thr':>9}  modelled speed-up at " + "/".join(
        str(c) for c in CORES[1:]) + " cores")  # fmt: skip
    for name in args.cases.split(","):
        case, batch = EXTRA.get(name, (CASES.get(name), None))
        batch = batch or case.batch
        part = parts(case, batch, args.dtype)
        if part is None:
            print(f"{name:<10}  not sharded at batch {batch}")
            continue
        us = {k: v * 1e6 for k, v in part.items() if k != "shards"}
        us["shard"] = (us["step1"] - us["sum"] - us["update"]) / part["shards"]
        base = model_time(1, part)
        speedups = "/".join(f"{base / model_time(c, part):.2f}" for c in CORES[1:])
        print(
            f"{name:<10}{part['shards']:>7}{us['shard']:>9.0f}{us['sum']:>8.0f}"
            f"{us['update']:>8.0f}{us['launch']:>8.1f}{us['step1']:>9.0f}"
            f"{us['step2']:>9.0f}  {speedups}  (measured 2 threads: "
            f"{part['step1'] / part['step2']:.2f}x)"
        )


if __name__ == "__main__":
    main()
