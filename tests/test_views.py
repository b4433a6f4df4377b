"""The kernels' views (kernels/views.py): the same views as NumPy's slicing, and the
ones that leave a kernel keep their buffer alive."""

import gc

import numpy as np
import pytest
from numba import njit

from fastnn import kernels as K
from fastnn.kernels import layout as L
from fastnn.kernels import network as N
from fastnn.kernels.views import _owned, _view


@njit
def _view_2d(flat, start, n_rows, n_cols):
    view = _view(flat, start, (n_rows, n_cols))
    if view.size:
        view[0, 0] = -1  # writes reach flat
    return view.copy(), view.shape


@njit
def _view_1d(flat, start, n):
    view = _view(flat, start, (n,))
    return view.copy(), view.shape


@njit
def _owned_view(flat, start, n_rows, n_cols):
    return _owned(_view(flat, start, (n_rows, n_cols)), flat)


SHAPES = [(0, 1, 1), (3, 2, 4), (5, 0, 3), (0, 3, 0), (7, 1, 5)]


@pytest.mark.parametrize(("start", "n_rows", "n_cols"), SHAPES)
def test_view_is_numpys_slice_and_reshape(dtype, start, n_rows, n_cols):
    flat = np.arange(12, dtype=dtype)
    expected = flat[start : start + n_rows * n_cols].reshape(n_rows, n_cols).copy()
    expected[:1, :1] = -1

    comp, shape = _view_2d(flat, start, n_rows, n_cols)

    assert shape == (n_rows, n_cols) and comp.dtype == dtype
    np.testing.assert_array_equal(comp, expected)
    if n_rows * n_cols:
        assert flat[start] == -1
    one_d, shape = _view_1d(np.arange(12, dtype=dtype), start, n_cols)
    assert shape == (n_cols,)
    np.testing.assert_array_equal(one_d, np.arange(12, dtype=dtype)[start:][:n_cols])


def test_view_counts_entries_of_a_2d_buffer_in_memory_order(dtype):
    state = np.arange(12, dtype=dtype).reshape(2, 6)  # like an optimizer's state

    comp, shape = _view_1d(state, 6 + 2, 3)

    assert shape == (3,)
    np.testing.assert_array_equal(comp, state[1, 2:5])


def test_view_of_a_read_only_buffer_stays_read_only():
    flat = np.arange(6.0)
    flat.flags.writeable = False

    comp, _ = _view_1d(flat, 2, 3)

    np.testing.assert_array_equal(comp, [2.0, 3.0, 4.0])


def test_python_view_refuses_a_buffer_that_is_not_c_contiguous():
    """Under ``NUMBA_DISABLE_JIT=1`` a reshape of such a buffer would be a copy, and
    a kernel's writes through the view would be lost."""
    from fastnn.kernels.views import _view_py

    with pytest.raises(ValueError, match="C-contiguous"):
        _view_py(np.zeros((4, 6))[:, ::2], 0, (12,))


def _churn():
    """Allocate and fill buffers, so that freed memory would be reused."""
    gc.collect()
    return [np.full(4096, 7.0 + i) for i in range(64)]


def test_owned_view_keeps_its_buffer_alive():
    view = _owned_view(np.arange(40.0), 5, 3, 4)
    _churn()

    assert view.base is not None
    np.testing.assert_array_equal(view, np.arange(5.0, 17.0).reshape(3, 4))


def test_public_kernels_return_views_that_keep_their_buffer_alive(dtype, rng):
    layout = L.make_layout([3, 4, 2], [K.TANH, K.IDENTITY], [True, False])
    config = L.make_config([0.0, 0.0], 0.9, 1e-5)
    params = rng.standard_normal(L.n_params(layout)).astype(dtype)
    stats = np.ones(L.n_stats(layout), dtype)
    X = rng.standard_normal((5, 3)).astype(dtype)
    net = (params, layout, config, stats)
    size = L.workspace_size(layout, 5)
    expected = N.network_forward(net, X, np.empty(size, dtype), 0, 0, 0).copy()

    out = N.network_forward(net, X, np.empty(size, dtype), 0, 0, 0)
    W, b = L.layer_params(params.copy(), layout, 1)
    gamma, beta = L.norm_params(params.copy(), layout, 0)
    _churn()

    for view in (out, W, b, gamma, beta):
        assert view.base is not None
    np.testing.assert_array_equal(out, expected)
    n_w = 4 * 2
    off = int(layout[1, L.OFFSET])
    np.testing.assert_array_equal(W, params[off : off + n_w].reshape(4, 2))
    np.testing.assert_array_equal(b, params[off + n_w : off + n_w + 2])
    np.testing.assert_array_equal(gamma, params[3 * 4 + 4 : 3 * 4 + 8])
    np.testing.assert_array_equal(beta, params[3 * 4 + 8 : 3 * 4 + 12])
