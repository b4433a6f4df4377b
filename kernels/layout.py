"""The layout of a network: where each layer's parameters, statistics and scratch live.

This module owns that arithmetic (counts, offsets, views, workspace sizes); the model,
its file format, the optimizers and the kernels all use it.

A network is the tuple ``net = (params, layout, config, stats)``, which every
whole-network kernel takes as one argument:

``params`` : ndarray of shape (n_params,)
    One flat buffer. Layer ``l`` keeps ``W`` (row-major, ``(n_in, n_out)``) at
    ``params[off:off + n_in * n_out]``, then ``b`` (``n_out``), then, with batch
    normalization, ``gamma`` and ``beta`` (``n_out`` each). Gradients and optimizer
    state are buffers laid out the same way.
``layout`` : int64 ndarray of shape (n_layers, 6)
    One row per layer: ``n_in, n_out, off, act, norm, stats_off`` (columns ``N_IN``,
    ``N_OUT``, ``OFFSET``, ``ACT``, ``NORM``, ``STATS``): ``norm`` is 1 for batch
    normalization between the matmul and the activation, and ``stats_off`` is where
    its running mean and variance start in ``stats`` (-1 without).
``config`` : float64 ndarray of shape (n_layers, 3)
    Per layer (columns ``DROPOUT``, ``BN_MOMENTUM``, ``BN_EPS``): the dropout rate
    applied to its output in training, and batch normalization's momentum and eps.
``stats`` : ndarray of shape (n_stats,)
    Running means and variances of the batch-normalized layers (``2 * n_out`` each).

The workspace ``work`` of a batch of ``n`` rows holds one *slab* per layer, of
:func:`workspace_size` entries in all: the layer's output ``A``, its delta ``D``, its
output after dropout ``Ad`` and its normalized pre-activation ``H`` (``(n, n_out)``
each), then two vectors of ``n_out`` (batch normalization's mean and inverse standard
deviation). The kernels make these views with :func:`.views._view`, which allocates
nothing and costs no reference counting.
"""

import numpy as np

from .config import internal, jit
from .views import _owned, _view

N_IN, N_OUT, OFFSET, ACT, NORM, STATS = range(6)
DROPOUT, BN_MOMENTUM, BN_EPS = range(3)


def make_layout(sizes, activations, norms):
    """The ``layout`` array of a network.

    Parameters
    ----------
    sizes : sequence of int
        Units per layer, input first (``n_layers + 1`` entries).
    activations : sequence of int
        Activation code of each layer (``n_layers`` entries).
    norms : sequence of bool
        Whether each layer is batch-normalized (``n_layers`` entries).

    Returns
    -------
    int64 ndarray of shape (n_layers, 6)
    """
    n_layers = len(sizes) - 1
    layout = np.zeros((n_layers, 6), np.int64)
    offset = stats = 0
    for layer in range(n_layers):
        n_in, n_out, norm = sizes[layer], sizes[layer + 1], bool(norms[layer])
        layout[layer] = (n_in, n_out, offset, activations[layer], norm,
                         stats if norm else -1)  # fmt: skip
        offset += n_in * n_out + n_out * (3 if norm else 1)
        stats += 2 * n_out if norm else 0
    return layout


def make_config(dropout, bn_momentum, bn_eps):
    """The ``config`` array: one row per layer of ``dropout`` (a rate per layer) and
    batch normalization's ``bn_momentum`` and ``bn_eps``."""
    config = np.zeros((len(dropout), 3))
    config[:, DROPOUT] = dropout
    config[:, BN_MOMENTUM] = bn_momentum
    config[:, BN_EPS] = bn_eps
    return config


def n_params(layout) -> int:
    """Length of the parameter buffer of ``layout``."""
    n_in, n_out, off, _, norm, _ = (int(x) for x in layout[-1])
    return off + n_in * n_out + n_out * (3 if norm else 1)


def n_stats(layout) -> int:
    """Length of the running-statistics buffer of ``layout``."""
    return int(np.sum(2 * layout[:, N_OUT] * layout[:, NORM]))


def param_views(flat, layout):
    """Lists of views ``W`` (shape ``(n_in, n_out)``) and ``b`` (``(n_out,)``) of
    every layer into ``flat`` (parameters, or a buffer laid out like them)."""
    weights, biases = [], []
    for n_in, n_out, off, *_ in layout:
        weights.append(flat[off : off + n_in * n_out].reshape(n_in, n_out))
        biases.append(flat[off + n_in * n_out : off + n_in * n_out + n_out])
    return weights, biases


def norm_views(flat, layout, layer):
    """Views ``(gamma, beta)`` of batch-normalized layer ``layer`` into ``flat``."""
    n_in, n_out, off = (int(x) for x in layout[layer, :3])
    start = off + (n_in + 1) * n_out
    return flat[start : start + n_out], flat[start + n_out : start + 2 * n_out]


def running_views(stats, layout, layer):
    """Views ``(mean, var)`` of the running statistics of layer ``layer``."""
    n_out, start = int(layout[layer, N_OUT]), int(layout[layer, STATS])
    return stats[start : start + n_out], stats[start + n_out : start + 2 * n_out]


def widest(layout) -> int:
    """The largest ``n_in * n_out`` of the layers: multiply-adds per row of the
    biggest matmul."""
    return int(np.max(layout[:, N_IN] * layout[:, N_OUT]))


def macs_per_row(layout) -> int:
    """The multiply-adds of every layer's matmul for one row: the network's size as
    work."""
    return int(np.sum(layout[:, N_IN] * layout[:, N_OUT]))


def workspace_size(layout, n_samples) -> int:
    """Length of the ``work`` buffer the network kernels need for ``n_samples``
    rows."""
    n_out = layout[:, N_OUT]
    return int(np.sum(4 * int(n_samples) * n_out + 2 * n_out))


@internal
def _layer_params(params, layout, layer):
    """Views ``W`` of shape (n_in, n_out) and ``b`` of shape (n_out,) of one layer,
    holding no reference (:mod:`.views`).

    Also works on a gradient buffer laid out like ``params``.
    """
    n_in = layout[layer, N_IN]
    n_out = layout[layer, N_OUT]
    off = layout[layer, OFFSET]
    W = _view(params, off, (n_in, n_out))
    return W, _view(params, off + n_in * n_out, (n_out,))


@internal
def _norm_params(params, layout, layer):
    """Views ``gamma`` and ``beta`` of a batch-normalized layer, holding no
    reference."""
    n_out = layout[layer, N_OUT]
    start = layout[layer, OFFSET] + (layout[layer, N_IN] + 1) * n_out
    return _view(params, start, (n_out,)), _view(params, start + n_out, (n_out,))


@internal
def _slab_size(n, n_out):
    return 4 * n * n_out + 2 * n_out


@internal
def _slab(work, start, n, n_out):
    """One layer's workspace: A, D, Ad (dropped out), H (n, n_out) and two vectors,
    as views that hold no reference."""
    nn = n * n_out
    A = _view(work, start, (n, n_out))
    D = _view(work, start + nn, (n, n_out))
    Ad = _view(work, start + 2 * nn, (n, n_out))
    H = _view(work, start + 3 * nn, (n, n_out))
    u = _view(work, start + 4 * nn, (n_out,))
    v = _view(work, start + 4 * nn + n_out, (n_out,))
    return A, D, Ad, H, u, v


@internal
def _slab_start(layout, n, layer):
    """Where layer ``layer``'s slab starts in the workspace for ``n`` rows; with
    ``layer = n_layers``, the size of that workspace."""
    start = 0
    for before in range(layer):
        start += _slab_size(n, layout[before, N_OUT])
    return start


@internal
def _rows_that_fit(layout, work_size, extra_per_row):
    """How many rows (at least 1) a workspace of ``work_size`` entries holds, each
    row taking ``extra_per_row`` entries besides the network's slabs."""
    n_layers = layout.shape[0]
    fixed = _slab_start(layout, 0, n_layers)
    per_row = _slab_start(layout, 1, n_layers) - fixed + extra_per_row
    return max(1, (work_size - fixed) // per_row)


@jit
def layer_params(params, layout, layer):
    """Views ``W`` of shape (n_in, n_out) and ``b`` of shape (n_out,) of one layer of
    ``params`` (or of a buffer laid out like it), for Python and ``@njit`` code."""
    W, b = _layer_params(params, layout, layer)
    return _owned(W, params), _owned(b, params)


@jit
def norm_params(params, layout, layer):
    """Views ``gamma`` and ``beta`` (shape (n_out,) each) of a batch-normalized
    layer of ``params``, for Python and ``@njit`` code."""
    gamma, beta = _norm_params(params, layout, layer)
    return _owned(gamma, params), _owned(beta, params)
