"""What a model's compiled calls take: the network tuple, workspaces, the BLAS guard.

:class:`CompiledCalls` is a base class of :class:`fastnn.MLP`, kept apart from the
model's user-facing methods. It is the interface through which :mod:`fastnn.training`
and :mod:`fastnn.explain` (and the benchmarks) run kernels on a model.
"""

import threading
from functools import cached_property
from typing import Any

import numpy as np

from . import _validation as v
from .kernels import LOSSES
from .kernels import layout as klayout
from .kernels import network as knet
from .kernels.blas import blas_threads

PREDICT_BLOCK = 512  # rows per block of inference; bounds its workspace
MAX_WORKSPACES = 4  # batch sizes whose training workspaces a model keeps


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

    @staticmethod
    def _drop_scratch(state):
        """``state`` (a model's ``__dict__`` copy) without the caches."""
        for name in ("_workspaces", "_local", "_sizes"):
            state.pop(name, None)
        return state

    @property
    def network(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return self.params, self.layout, self.config, self.running_stats

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

    def kernel_args(self, X, Y, w, work, mode):
        """:func:`fastnn.kernels.network.train_step`'s arguments for checked data
        ``(X, Y, w)``, the workspace ``work`` and ``mode``."""
        no_backup = self.grads[:0]
        scratch = (self.grads, work, no_backup)
        return (self.network, self.optimizer.kernel_state, (X, Y, w), scratch,
                LOSSES[self.loss_name], mode, self.dropout_seed)  # fmt: skip

    def infer(self, kernel, X, *args, out, block=PREDICT_BLOCK,
              workspace_size=klayout.workspace_size):  # fmt: skip
        """Run the inference kernel ``kernel(network, X, *args, work, out)`` on the
        checked ``X`` in blocks of at most ``block`` rows, with a workspace of
        ``workspace_size(layout, rows)`` entries carved from one that belongs to the
        calling thread (so that calls may run side by side); returns what the kernel
        returns."""
        rows = min(X.shape[0], block)
        size = self._sizes.get((workspace_size, rows))
        if size is None:  # NumPy on the layout: microseconds, so once per row count
            size = self._sizes[workspace_size, rows] = workspace_size(self.layout, rows)
        # One workspace per thread, kept: a fresh one of more than malloc's mmap
        # threshold (128 KiB) is new pages, zeroed by the kernel, on every call.
        work = getattr(self._local, "work", None)
        if work is None or work.shape[0] < size:
            work = self._local.work = np.empty(size, self.dtype)
        # Exactly ``size`` entries: the kernels take as many rows at a time as fit,
        # and BLAS may round a row differently in a matmul of another row count, so
        # a larger leftover workspace would change the last bits of the results.
        with self.blas_guard(rows):
            return kernel(self.network, X, *args, work[:size], out)
