"""Scale out on Dask: a grid search over fastnn estimators, and batch prediction.

Two ways to spread fastnn's work over a Dask cluster, here a ``LocalCluster`` of worker
processes (the same code runs on a real cluster: pass its scheduler's address):

1. ``GridSearchCV`` over ``fastnn.sklearn.MLPClassifier`` under joblib's ``"dask"``
   backend: each (parameters, fold) fit runs on a worker. The estimators travel to
   the workers by pickle, and the scores come back.
2. Prediction over a ``dask.array``: ``map_blocks`` calls the fitted estimator's
   ``predict_proba`` on every block of rows, on the workers, in parallel.

Worker processes rather than threads, because that is what a cluster of machines
does: everything crosses a process boundary by pickle (models included) and each
worker imports fastnn and loads Numba's compiled code from its disk cache. That costs
a few seconds of start-up; ``--threads`` runs the workers as threads of this process
instead (fastnn's kernels release the GIL, so threads also work in parallel).

    python examples/dask_scaleout.py [--workers 2] [--threads] [--scheduler ADDRESS]

Needs scikit-learn, ``dask[array]`` and ``distributed``: ``pip install 'fastnn[dask]'``.
"""

import argparse
import time
import warnings
from contextlib import nullcontext

import dask.array as da
import joblib
import numpy as np
from dask.distributed import Client, LocalCluster
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, train_test_split

from fastnn.sklearn import MLPClassifier

PARAM_GRID = {"hidden_layer_sizes": [(32,), (128,)], "alpha": [1e-4, 1e-2]}


def load_data(seed=0):
    """The digits scaled to [0, 1], float32, split 75/25 (stratified)."""
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    return train_test_split(X, y, stratify=y, random_state=seed)


def grid_search(X, y, backend=None, param_grid=None, max_iter=30, cv=3):
    """``GridSearchCV`` over fastnn's ``MLPClassifier``; its fits run on Dask's
    workers when ``backend="dask"`` (a ``Client`` must be connected), here when
    ``backend=None``."""
    search = GridSearchCV(
        MLPClassifier(max_iter=max_iter, batch_size=64, random_state=0),
        PARAM_GRID if param_grid is None else param_grid,
        cv=cv,
    )
    with warnings.catch_warnings():  # short runs: max_iter is reached on purpose
        warnings.simplefilter("ignore", ConvergenceWarning)
        with joblib.parallel_backend(backend) if backend else nullcontext():
            search.fit(X, y)
    return search


def predict_proba_blocks(estimator, X, rows_per_block=256):
    """Class probabilities of the rows of ``X`` (a NumPy or Dask array), computed
    block by block with ``map_blocks``: a lazy dask array of shape
    (n_samples, n_classes), of the estimator's dtype."""
    if not isinstance(X, da.Array):
        X = da.from_array(X, chunks=(rows_per_block, X.shape[1]))
    X = X.rechunk({1: -1})  # every block holds whole rows
    n_classes = len(estimator.classes_)
    return X.map_blocks(
        estimator.predict_proba,
        dtype=estimator.model_.dtype,
        chunks=(X.chunks[0], (n_classes,)),
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", action="store_true", help="thread workers")
    parser.add_argument("--scheduler", help="address of an existing Dask scheduler")
    args = parser.parse_args(argv)
    X_train, X_test, y_train, y_test = load_data()

    start = time.perf_counter()
    if args.scheduler:
        cluster = nullcontext()
        client = Client(args.scheduler)
    else:
        cluster = LocalCluster(
            n_workers=args.workers,
            threads_per_worker=1,
            processes=not args.threads,
            dashboard_address=None,
        )
        client = Client(cluster)
    with cluster, client:
        print(f"{client}, started in {time.perf_counter() - start:.1f} s")

        start = time.perf_counter()
        search = grid_search(X_train, y_train, backend="dask")
        seconds = time.perf_counter() - start
        n_fits = len(search.cv_results_["params"]) * search.n_splits_
        print(f"grid search: {n_fits} fits on Dask in {seconds:.1f} s")
        for params, score in zip(
            search.cv_results_["params"],
            search.cv_results_["mean_test_score"],
            strict=True,
        ):
            print(f"  {params}: mean CV accuracy {score:.4f}")
        best = search.best_estimator_
        accuracy = best.score(X_test, y_test)
        print(f"best {search.best_params_}, test accuracy {accuracy:.4f}")

        X_many = da.from_array(np.tile(X_test, (20, 1)), chunks=(1000, X_test.shape[1]))
        proba = predict_proba_blocks(best, X_many)
        start = time.perf_counter()
        P = proba.compute()
        seconds = time.perf_counter() - start
        same = np.array_equal(P, best.predict_proba(X_many.compute()))
        print(
            f"predict_proba over {X_many.shape[0]} rows in {X_many.numblocks[0]} "
            f"blocks on Dask: {seconds * 1e3:.0f} ms, equal to local: {same}"
        )
    return search, P


if __name__ == "__main__":
    main()
