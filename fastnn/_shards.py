"""Data-parallel training steps: a large batch cut into fixed shards.

A batch of at least :data:`SHARD_MIN_MACS` multiply-adds per shard is cut into
:func:`n_shards` contiguous shards, a number that depends on the batch size and the
network only, never on the thread count. Each shard's loss and gradients come from
the whole-network kernel (:func:`fastnn.kernels.network.train_step` in a gradients
mode) into a gradient buffer of its own, the shards running side by side on
fastnn's threads (:mod:`fastnn._threads`). The shard gradients are then summed in
shard order, each weighted by its share of the batch, and the optimizer updates the
parameters once, both on the calling thread. So the same bits come out
at any thread count; they differ in the last bits from an unsharded step, which sums
the batch in one pass.

Dropout masks are drawn per shard, from the model's dropout seed mixed with the
shard's number (:func:`shard_seed`). Batch normalization needs the statistics of the
whole batch, so a batch-normalized network is never sharded.
"""

from dataclasses import dataclass
from functools import partial

import numpy as np

from . import _threads
from .kernels import LOSSES
from .kernels import layout as klayout
from .kernels import network as knet
from .kernels.layout import NORM
from .kernels.optimizers import optimizer_update
from .kernels.shards import sum_shards

#: The most shards a batch is cut into.
MAX_SHARDS = 8
#: A shard has at least this many rows ...
SHARD_MIN_ROWS = 256
#: ... and at least this many multiply-adds (rows times the network's per row), so
#: that the per-shard costs (a gradient buffer to write and sum, a thread hand-off
#: of 0.1-0.35 ms on a 2-vCPU VM) stay small against its arithmetic.
SHARD_MIN_MACS = 1 << 23


def n_shards(layout, n_rows):
    """Shards a batch of ``n_rows`` rows is cut into: the largest power of two
    within :data:`MAX_SHARDS` that gives every shard :data:`SHARD_MIN_ROWS` rows and
    :data:`SHARD_MIN_MACS` multiply-adds; 1 for a batch-normalized network."""
    if layout[:, NORM].any():
        return 1
    macs = n_rows * klayout.macs_per_row(layout)
    shards = 1
    while (
        2 * shards <= MAX_SHARDS
        and n_rows // (2 * shards) >= SHARD_MIN_ROWS
        and macs // (2 * shards) >= SHARD_MIN_MACS
    ):
        shards *= 2
    return shards


def shard_seed(seed, shard):
    """The dropout seed of shard ``shard`` (0 keeps ``seed``): an int64, as the
    kernels take it."""
    return (seed ^ (shard * 0x5851F42D4C957F2D)) & ((1 << 63) - 1)


@dataclass
class ShardBuffers:
    """What the shards of one batch size need: row cuts and weights, and a gradient
    buffer and a workspace per shard."""

    cuts: list
    scales: np.ndarray  # each shard's share of the batch, in the model's dtype
    grads: np.ndarray  # (n_shards, n_params)
    works: list

    @classmethod
    def make(cls, model, n_rows, shards):
        cuts = [s * n_rows // shards for s in range(shards + 1)]
        rows = np.diff(cuts)
        return cls(
            cuts=cuts,
            scales=(rows / n_rows).astype(model.dtype),
            grads=np.empty((shards, model.params.shape[0]), model.dtype),
            works=[
                np.empty(klayout.workspace_size(model.layout, r), model.dtype)
                for r in rows
            ],
        )


def _shard_rows(buffers, data, shard):
    """The rows of ``data = (X, Y, sample_weight)`` that make shard ``shard``."""
    X, Y, w = data
    lo, hi = buffers.cuts[shard], buffers.cuts[shard + 1]
    return X[lo:hi], Y[lo:hi], w[lo:hi] if w.size else w


def _shard_gradients(model, buffers, data, mode, shard):
    """One shard's loss, its gradients into ``buffers.grads[shard]``."""
    scratch = (buffers.grads[shard], buffers.works[shard], model.grads[:0])
    rows = _shard_rows(buffers, data, shard)
    return knet.train_step(
        model.network_for(rows[0].shape[0]), model.optimizer.kernel_state, rows,
        scratch,
        LOSSES[model.loss_name], mode, shard_seed(model.dropout_seed, shard),
    )  # fmt: skip


def gradients(model, buffers, data, mode):
    """The loss of ``data`` and its gradients into ``model.grads``, by shards;
    ``model.grads`` is left as it was when the loss is not finite."""
    shards = len(buffers.cuts) - 1
    values = _threads.map_items(
        partial(_shard_gradients, model, buffers, data, mode), shards,
        _threads.get_num_threads(),
    )  # fmt: skip
    value = _weighted(buffers, values)
    if not np.isfinite(value):
        return value
    # on the calling thread: on a VM, a second hand-off to the pool (a thread
    # woken and waited for, 0.1-0.3 ms) cost more than the sum (0.13 ms, wide1024)
    sum_shards(buffers.grads, buffers.scales, model.grads)
    return value


def _weighted(buffers, values):
    """The batch's loss: the shards' losses weighted by their shares, in order."""
    value = 0.0
    for scale, shard_value in zip(buffers.scales, values, strict=True):
        value += float(scale) * float(shard_value)
    return value


def train_step(model, buffers, data, backup):
    """One sharded optimizer step; returns the loss before it. Nothing changes when
    the loss is not finite. ``backup`` (or an empty array) receives the parameters
    from before the update."""
    value = gradients(model, buffers, data, knet.TRAINING)
    if np.isfinite(value):
        optimizer_update(model.optimizer.kernel_state, model.params, model.grads,
                         model.layout, backup)  # fmt: skip
    return value


def loss(model, buffers, data, mode, step):
    """The loss of ``data`` as :func:`gradients` computes it, from forward passes
    only."""

    def shard_loss(shard):
        rows = _shard_rows(buffers, data, shard)
        return knet.network_loss(
            model.network_for(rows[0].shape[0]), rows,
            LOSSES[model.loss_name], buffers.works[shard], mode,
            shard_seed(model.dropout_seed, shard), step,
        )  # fmt: skip

    shards = len(buffers.cuts) - 1
    values = _threads.map_items(shard_loss, shards, _threads.get_num_threads())
    return _weighted(buffers, values)
