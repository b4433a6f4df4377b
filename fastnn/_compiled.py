"""What a model's compiled calls take: the network tuple, workspaces, the BLAS guard.

:class:`CompiledCalls` is a base class of :class:`fastnn.MLP`, kept apart from the
model's user-facing methods. It is the interface through which :mod:`fastnn.training`
and :mod:`fastnn.explain` (and the benchmarks) run kernels on a model.
"""

import numbers
import threading
from functools import cached_property
from typing import Any

import numpy as np

from . import _shards
from . import _validation as v
from ._threads import get_num_threads, map_items
from .kernels import LOSSES
from .kernels import dense as kdense
from .kernels import layout as klayout
from .kernels import network as knet
from .kernels.blas import blas_threads

PREDICT_BLOCK = 512  # rows per block of inference; bounds its workspace
MAX_WORKSPACES = 4  # batch sizes whose training workspaces a model keeps
#: Inference runs on several threads from this many multiply-adds (rows times the
#: network's multiply-adds per row) and two blocks of rows.
PARALLEL_MIN_MACS = 1 << 23


class CompiledCalls:
    """The compiled-call side of a model; the model provides ``params``, ``grads``,
    ``layout``, ``config``, ``running_stats``, ``dtype``, ``training``,
    ``loss_name``, ``optimizer`` and ``dropout_seed``."""

    params: np.ndarray
    grads: np.ndarray
    layout: np.ndarray
    config: np.ndarray
    running_stats: np.ndarray
    dtype: type
    training: bool
    loss_name: str
    optimizer: Any
    dropout_seed: int

    def _init_scratch(self) -> None:
        """Empty caches of workspaces (at construction and after unpickling)."""
        self._workspaces: dict[int, np.ndarray] = {}
        self._local = threading.local()  # each thread's inference workspace
        self._sizes: dict = {}  # workspace sizes by (size function, rows)
        self._shard_buffers: dict = {}  # by batch size; None where not sharded

    @staticmethod
    def _drop_scratch(state):
        """``state`` (a model's ``__dict__`` copy) without the caches."""
        for name in ("_workspaces", "_local", "_sizes", "_shard_buffers"):
            state.pop(name, None)
        return state

    @property
    def network(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return self.params, self.layout, self.config, self.running_stats

    def network_for(self, n_rows):
        """:attr:`network` with the dense layers' path for calls on ``n_rows`` rows
        at a time as its fifth entry (:func:`fastnn.kernels.dense.path_for`), so
        that the kernels compile that path alone."""
        return *self.network, kdense.path_for(n_rows)

    @cached_property
    def _widest(self):
        return klayout.widest(self.layout)

    def blas_guard(self, n_rows):
        """The context a compiled call on ``n_rows`` rows at a time runs in: the BLAS
        it calls on one thread where it would use several (see
        :func:`fastnn.kernels.blas.blas_threads`)."""
        return blas_threads(n_rows * self._widest)

    def workspace(self, n_samples):
        """The network kernels' workspace for batches of ``n_samples`` rows, kept
        for the last few batch sizes seen (hold :attr:`lock` while it is in use)."""
        work = self._workspaces.get(n_samples)
        if work is None:
            if len(self._workspaces) >= MAX_WORKSPACES:
                self._workspaces.pop(next(iter(self._workspaces)))
            size = klayout.workspace_size(self.layout, n_samples)
            work = self._workspaces[n_samples] = np.empty(size, self.dtype)
        return work

    def shards(self, n_samples):
        """The buffers of a data-parallel step on ``n_samples`` rows
        (:class:`fastnn._shards.ShardBuffers`), or None when such a batch is not
        cut into shards (:func:`fastnn._shards.n_shards`); kept for the last few
        batch sizes seen (hold :attr:`lock` while they are in use)."""
        if n_samples in self._shard_buffers:
            return self._shard_buffers[n_samples]
        count = _shards.n_shards(self.layout, n_samples)
        buffers = None
        if count > 1:
            buffers = _shards.ShardBuffers.make(self, n_samples, count)
        if len(self._shard_buffers) >= MAX_WORKSPACES:
            self._shard_buffers.pop(next(iter(self._shard_buffers)))
        self._shard_buffers[n_samples] = buffers
        return buffers

    def step_arguments(self, X, Y, sample_weight=None, mode=None):
        """The compiled step and the arguments :meth:`train_step` would call it with.

        For benchmarks and for calling the kernel from your own code: ``kernel(*args)``
        runs the step (or, with ``mode`` ``TRAINING`` or ``INFERENCE`` of
        :mod:`fastnn.kernels.network`, the gradients alone) on the checked data,
        without the Python layer. The arguments hold views of the model's buffers and
        a workspace of its own.

        Returns
        -------
        kernel : numba dispatcher
            :func:`fastnn.kernels.network.train_step`.
        args : tuple
            ``(network, optimizer, (X, Y, sample_weight), (grads, work, backup),
            loss, mode, seed)``.
        """
        X, Y, w = v.check_training_input(self, X, Y, sample_weight)
        work = np.empty(klayout.workspace_size(self.layout, X.shape[0]), self.dtype)
        mode = knet.TRAINING_UPDATE if mode is None else mode
        return knet.train_step, self.kernel_args(X, Y, w, work, mode)

    def kernel_args(self, X, Y, w, work, mode, backup=None):
        """:func:`fastnn.kernels.network.train_step`'s arguments for checked data
        ``(X, Y, w)``, the workspace ``work``, ``mode`` and a buffer that receives
        the parameters from before the update (or None for none)."""
        backup = self.grads[:0] if backup is None else backup
        scratch = (self.grads, work, backup)
        return (self.network_for(X.shape[0]), self.optimizer.kernel_state, (X, Y, w),
                scratch,
                LOSSES[self.loss_name], mode, self.dropout_seed)  # fmt: skip

    def run_step(self, X, Y, w, mode, backup=None):
        """A training step on checked data (``mode`` ``TRAINING_UPDATE``), or its
        gradients alone into :attr:`grads` (``TRAINING`` or ``INFERENCE``); returns
        the loss. One compiled call, or, for a batch cut into shards, a
        data-parallel step (:mod:`fastnn._shards`). ``backup`` receives the
        parameters from before an update. Hold :attr:`lock` and :meth:`blas_guard`.
        """
        shards = self.shards(X.shape[0])
        if shards is None:
            work = self.workspace(X.shape[0])
            return knet.train_step(*self.kernel_args(X, Y, w, work, mode, backup))
        if mode != knet.TRAINING_UPDATE:
            return _shards.gradients(self, shards, (X, Y, w), mode)
        backup = self.grads[:0] if backup is None else backup
        return _shards.train_step(self, shards, (X, Y, w), backup)

    def infer(self, kernel, X, *args, out, block=PREDICT_BLOCK,
              workspace_size=klayout.workspace_size):  # fmt: skip
        """Run the inference kernel ``kernel(network, X, *args, work, out)`` on the
        checked ``X`` in blocks of at most ``block`` rows, with a workspace of
        ``workspace_size(layout, rows)`` entries carved from one that belongs to the
        calling thread (so that calls may run side by side).

        With several threads (:func:`fastnn.get_num_threads`) and at least
        :data:`PARALLEL_MIN_MACS` of work, the threads take the blocks one at a
        time: each runs the kernel on a block's rows of ``X``, ``out`` and of every
        array argument with one row per row of ``X``. The blocks are the same at
        any thread count, and so are the results, bit for bit.

        Returns what the kernel returns: ``out``, or for a kernel that returns an
        int, -1 or the flat index in ``X`` of the first entry it refused.
        """
        n = X.shape[0]
        rows = min(n, block)
        size = self._sizes.get((workspace_size, rows))
        if size is None:  # NumPy on the layout: microseconds, so once per row count
            size = self._sizes[workspace_size, rows] = workspace_size(self.layout, rows)
        n_blocks = -(-n // block)
        n_threads = 1
        if n_blocks > 1 and n * self._macs_per_row >= PARALLEL_MIN_MACS:
            n_threads = min(get_num_threads(), n_blocks)
        net = self.network_for(rows)
        with self.blas_guard(rows):
            if n_threads == 1:
                return kernel(net, X, *args, self._work(size), out)

            def run_block(i):
                lo, hi = i * block, min((i + 1) * block, n)
                part = [a[lo:hi] if _per_row(a, n) else a for a in args]
                return kernel(net, X[lo:hi], *part, self._work(size), out[lo:hi])

            results = map_items(run_block, n_blocks, n_threads)
        if not isinstance(results[0], numbers.Integral):
            return out
        for i, bad in enumerate(results):
            if bad >= 0:
                return i * block * X.shape[1] + bad
        return -1

    def _work(self, size):
        """The calling thread's inference workspace, exactly ``size`` entries."""
        # One workspace per thread, kept: a fresh one of more than malloc's mmap
        # threshold (128 KiB) is new pages, zeroed by the kernel, on every call.
        work = getattr(self._local, "work", None)
        if work is None or work.shape[0] < size:
            work = self._local.work = np.empty(size, self.dtype)
        # Exactly ``size`` entries: the kernels take as many rows at a time as fit,
        # and BLAS may round a row differently in a matmul of another row count, so
        # a larger leftover workspace would change the last bits of the results.
        return work[:size]

    @cached_property
    def _macs_per_row(self):
        return klayout.macs_per_row(self.layout)


def _per_row(arg, n_rows):
    """Whether a kernel argument has a row per row of ``X`` (and is cut with it)."""
    return isinstance(arg, np.ndarray) and arg.ndim > 0 and arg.shape[0] == n_rows
