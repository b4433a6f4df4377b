"""The dense layers' path as a network tuple's fifth entry (``kernels.dense.BLAS`` or
``LOOPS``): what the type chooses, and that either path is right on any rows."""

import os
import subprocess
import sys

import numba
import numpy as np
import pytest

import fastnn
from fastnn.kernels import dense as kdense
from fastnn.kernels import network as knet

from _helpers import reference_gradients
from conftest import assert_close


def _model(dtype):
    return fastnn.MLP([5, 7, 3], hidden="tanh", output="softmax",
                      loss="cross_entropy", dtype=dtype, seed=0)  # fmt: skip


def _data(dtype, rows):
    rng = np.random.default_rng(rows)
    X = rng.standard_normal((rows, 5)).astype(dtype)
    Y = np.eye(3, dtype=dtype)[rng.integers(0, 3, rows)]
    return X, Y


def _gradients(model, X, Y, net):
    """The loss and a copy of the gradients from the step kernel run on ``net``."""
    kernel, args = model.step_arguments(X, Y, mode=knet.TRAINING)
    value = kernel(net, *args[1:])
    return value, model.grads.copy()


def test_path_for_follows_loop_max_rows():
    assert kdense.path_for(1) is kdense.LOOPS
    assert kdense.path_for(kdense.LOOP_MAX_ROWS) is kdense.LOOPS
    assert kdense.path_for(kdense.LOOP_MAX_ROWS + 1) is kdense.BLAS


def test_the_network_tuples_type_chooses_the_kernel():
    net = _model("float32").network
    assert kdense._typed_path(numba.typeof(net)) == "rows"
    assert kdense._typed_path(numba.typeof((*net, kdense.BLAS))) == "blas"
    assert kdense._typed_path(numba.typeof((*net, kdense.LOOPS))) == "loops"
    with pytest.raises(TypeError, match="BLAS or LOOPS, not int64"):
        kdense._typed_path(numba.typeof((*net, 1)))


def test_the_model_passes_the_path_for_its_rows():
    model = _model("float32")
    assert model.network_for(2)[4] is kdense.LOOPS
    assert model.network_for(64)[4] is kdense.BLAS
    for mine, its in zip(model.network_for(64)[:4], model.network, strict=True):
        assert mine is its


@pytest.mark.parametrize("rows", [2, 16])
@pytest.mark.parametrize("path", ["BLAS", "LOOPS"])
def test_either_path_on_any_rows_matches_the_reference(path, rows, dtype):
    model = _model(dtype)
    X, Y = _data(dtype, rows)
    value, grads = _gradients(model, X, Y, (*model.network, getattr(kdense, path)))
    ref_value, ref_dW, ref_db = reference_gradients(model, X, Y)
    assert_close(value, ref_value, dtype)
    model.grads[:] = grads
    for layer, (dW, db) in enumerate(zip(model._grad_w, model._grad_b, strict=True)):
        assert_close(dW, ref_dW[layer], dtype, f"dW[{layer}]")
        assert_close(db, ref_db[layer], dtype, f"db[{layer}]")


@pytest.mark.parametrize("rows", [2, 16])
def test_a_four_tuple_chooses_by_rows_as_the_model_does(rows, dtype):
    """A network tuple without a path (what ``model.network`` gives users' code) runs
    the path the model would pass for the same rows: the same bits."""
    model = _model(dtype)
    X, Y = _data(dtype, rows)
    value, grads = _gradients(model, X, Y, model.network)
    chosen_value, chosen = _gradients(model, X, Y, model.network_for(rows))
    assert value == chosen_value
    np.testing.assert_array_equal(grads, chosen)


COMPILES_ONE_PATH = """
import numpy as np
import fastnn
from fastnn.kernels import dense, network

model = fastnn.MLP([5, 7, 3], dtype="float64", seed=0)
X = np.ones((16, 5))
work = np.empty(model.workspace(16).shape[0])
network.network_forward(model.network_for(16), X, work, network.INFERENCE, 0, 0)
print(len(dense._forward_blas.signatures), len(dense._forward_loops.signatures))
"""


def test_a_kernel_compiled_for_one_path_compiles_no_other(tmp_path):
    """In a fresh process with an empty cache, a forward pass on the BLAS path
    compiles the BLAS kernel and not the loops."""
    if numba.config.DISABLE_JIT:
        pytest.skip("kernels are plain functions (NUMBA_DISABLE_JIT=1)")
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", COMPILES_ONE_PATH], env=env,
                            capture_output=True, text=True, timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1", "0"]
