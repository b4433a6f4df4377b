"""Scale-out on Dask (examples/dask_scaleout.py): a grid search under joblib's dask
backend and map_blocks prediction, on a LocalCluster of 2 worker processes, give
exactly the local results; models travel both ways by pickle.

Worker processes, not threads: everything then crosses a process boundary by pickle
(estimators out, fitted ones and scores back) and each worker is a fresh interpreter
that imports fastnn, as on a real cluster. Starting them costs a few seconds, once
for the module.
"""

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")
da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

import fastnn  # noqa: E402
from fastnn.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

ROOT = Path(__file__).parents[1]


def _load_example():
    path = ROOT / "examples" / "dask_scaleout.py"
    spec = importlib.util.spec_from_file_location("dask_scaleout", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


example = _load_example()


@pytest.fixture(scope="module")
def data():
    X_train, X_test, y_train, y_test = example.load_data()
    return X_train[:600], y_train[:600], X_test


@pytest.fixture(scope="module")
def client(data):
    X, y, _ = data
    example.grid_search(X, y, max_iter=1, cv=2)  # compile here: workers load the cache
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    with cluster, distributed.Client(cluster) as client:
        client.wait_for_workers(2, timeout=120)
        yield client


GRID = {"hidden_layer_sizes": [(8,), (16,)], "alpha": [1e-4, 1e-1]}


def test_grid_search_on_dask_equals_local(client, data):
    X, y, X_test = data
    local = example.grid_search(X, y, param_grid=GRID, max_iter=8, cv=3)
    with distributed.get_task_stream(client) as tasks:
        remote = example.grid_search(X, y, "dask", param_grid=GRID, max_iter=8, cv=3)
    assert len({task["worker"] for task in tasks.data}) == 2  # both workers fitted
    np.testing.assert_array_equal(
        remote.cv_results_["mean_test_score"], local.cv_results_["mean_test_score"]
    )
    assert remote.best_params_ == local.best_params_
    np.testing.assert_array_equal(
        remote.predict_proba(X_test), local.predict_proba(X_test)
    )


def test_map_blocks_prediction_equals_local(client, data):
    X, y, X_test = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = MLPClassifier((16,), max_iter=5, random_state=0).fit(X, y)
    proba = example.predict_proba_blocks(clf, X_test, rows_per_block=100)
    assert proba.numblocks == (-(-len(X_test) // 100), 1)
    P = client.compute(proba).result()
    assert P.dtype == np.float32 and P.shape == (len(X_test), 10)
    # Not bit-equal: OpenBLAS's sgemm does not promise that a row's result is the
    # same in a matmul of 100 rows as in one of 450 (on some CPUs it differs in the
    # last bit), and the blocks here have 100.
    np.testing.assert_allclose(P, clf.predict_proba(X_test), rtol=1e-6, atol=1e-7)

    Y = np.column_stack([y, y % 3]).astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg = MLPRegressor(hidden_layer_sizes=(8,), max_iter=5, random_state=0)
        reg.fit(X, Y)
    blocks = da.from_array(X_test, chunks=(90, X_test.shape[1]))
    pred = blocks.map_blocks(
        reg.predict, dtype=np.float32, chunks=(blocks.chunks[0], 2)
    )
    np.testing.assert_allclose(
        client.compute(pred).result(), reg.predict(X_test), rtol=1e-6, atol=1e-6
    )


def _fit(estimator, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return estimator.fit(X, y)


def test_models_travel_both_ways(client, data):
    """Fitted on a worker and sent back, an estimator equals one fitted here; a
    fastnn.MLP sent to a worker predicts there what it predicts here."""
    X, y, X_test = data
    est = MLPClassifier((8,), max_iter=3, random_state=0)
    remote = client.submit(_fit, est, X, y).result()
    local = _fit(MLPClassifier((8,), max_iter=3, random_state=0), X, y)
    np.testing.assert_array_equal(remote.model_.params, local.model_.params)
    assert remote.loss_curve_ == local.loss_curve_
    remote.partial_fit(X, y)  # training continues identically after the trip
    local.partial_fit(X, y)
    np.testing.assert_array_equal(remote.model_.params, local.model_.params)

    model = local.model_
    assert isinstance(model, fastnn.MLP)
    P = client.submit(model.predict, X_test).result()
    np.testing.assert_array_equal(P, model.predict(X_test))
