"""fastnn.sklearn: scikit-learn's own estimator checks, the network each target gets,
the stopping rule, dtypes, weights, pickling, the digits.

The mapping of scikit-learn's objective onto fastnn's is in
``test_sklearn_objective.py``."""

import importlib.util
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.utils.class_weight import compute_sample_weight  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import fastnn  # noqa: E402
from fastnn.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

from _sklearn_helpers import _data, _estimator, _sklearn_twin  # noqa: E402

ROOT = Path(__file__).parents[1]
quiet = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

# Small and quick, but able to pass the checks' accuracy (> 0.83) and R² (> 0.5) bars.
CHECKED = [
    MLPClassifier(hidden_layer_sizes=(8,), max_iter=50, learning_rate_init=0.01),
    MLPRegressor(hidden_layer_sizes=(8,), max_iter=50, learning_rate_init=0.01),
]
# Checks expected to fail, with the reason next to each: none at present.
EXPECTED_FAILURES = {}


@quiet
@parametrize_with_checks(
    CHECKED, expected_failed_checks=lambda est: EXPECTED_FAILURES.get(type(est), {})
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


# -- the network each target gets ------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "n_out", "output", "loss", "out_activation"),
    [
        ("binary", 1, "sigmoid", "bce", "logistic"),
        ("multiclass", 3, "softmax", "cross_entropy", "softmax"),
        ("multilabel", 3, "sigmoid", "bce", "logistic"),
        ("regression", 1, "identity", "mse", "identity"),
        ("regression2", 2, "identity", "mse", "identity"),
    ],
)
@quiet
def test_network_matches_the_target(kind, n_out, output, loss, out_activation):
    X, y = _data(kind)
    est = _estimator(
        kind, hidden_layer_sizes=(5, 4), activation="logistic", max_iter=3
    ).fit(X, y)
    model = est.model_
    assert isinstance(model, fastnn.MLP)
    assert model.sizes == [4, 5, 4, n_out]
    assert model.hidden == ["sigmoid", "sigmoid"]
    assert (model.output, model.loss_name) == (output, loss)
    assert est.out_activation_ == out_activation
    assert est.n_outputs_ == n_out and est.n_layers_ == 4 and est.n_features_in_ == 4
    assert [W.shape for W in est.coefs_] == [(4, 5), (5, 4), (4, n_out)]
    assert all(np.shares_memory(W, model.params) for W in est.coefs_)
    assert est.n_iter_ == 3 and len(est.loss_curve_) == 3 and est.t_ == 3 * len(X)


@quiet
def test_classifier_outputs():
    X, y = _data("multiclass")
    labels = np.array(["ant", "bee", "cat"])[y]
    est = _estimator("multiclass", max_iter=100, learning_rate_init=0.05).fit(X, labels)
    assert list(est.classes_) == ["ant", "bee", "cat"]
    P = est.predict_proba(X)
    assert P.shape == (len(X), 3)
    np.testing.assert_allclose(P.sum(axis=1), 1.0)
    np.testing.assert_array_equal(est.predict(X), est.classes_[P.argmax(axis=1)])
    np.testing.assert_allclose(est.predict_log_proba(X), np.log(P))
    assert est.score(X, labels) > 0.9

    Xb, yb = _data("binary")
    binary = _estimator("binary", max_iter=5).fit(Xb, yb * 5)  # labels 0 and 5
    Pb = binary.predict_proba(Xb)
    np.testing.assert_allclose(Pb[:, 0], 1 - Pb[:, 1])
    np.testing.assert_array_equal(binary.predict(Xb), np.where(Pb[:, 1] > 0.5, 5, 0))

    Xm, ym = _data("multilabel")
    multilabel = _estimator("multilabel", max_iter=5).fit(Xm, ym)
    Pm = multilabel.predict_proba(Xm)
    np.testing.assert_array_equal(multilabel.predict(Xm), (Pm > 0.5).astype(int))


@pytest.mark.parametrize("kind", ["multiclass", "binary", "regression2"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
@quiet
def test_float32_stays_float32(kind, dtype):
    X, y = _data(kind)
    X = (X * 10).astype(dtype)
    est = _estimator(kind, max_iter=2).fit(X, y)
    expected = np.float32 if dtype == np.float32 else np.float64
    assert est.model_.dtype == expected
    assert est.coefs_[0].dtype == expected
    out = est.predict_proba(X) if kind != "regression2" else est.predict(X)
    assert out.dtype == expected


# -- stopping --------------------------------------------------------------------------


@pytest.mark.parametrize("early_stopping", [False, True])
@pytest.mark.parametrize("kind", ["multiclass", "regression"])
def test_stopping_rule_is_sklearns(kind, early_stopping):
    """With a huge tol nothing counts as improvement: both stop after the same number
    of epochs, without a ConvergenceWarning."""
    X, y = _data(kind, n=60)
    est = _estimator(
        kind,
        tol=1e3,
        n_iter_no_change=3,
        max_iter=50,
        early_stopping=early_stopping,
        validation_fraction=0.2,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        est.fit(X, y)
        twin = _sklearn_twin(est).fit(X, y)
    assert est.n_iter_ == twin.n_iter_ == 5
    if early_stopping:
        assert est.best_loss_ is None and len(est.validation_scores_) == est.n_iter_
        assert est.best_validation_score_ == max(est.validation_scores_)
    else:
        assert est.best_loss_ == min(est.loss_curve_) and est.validation_scores_ is None


def test_max_iter_without_convergence_warns():
    X, y = _data("multiclass")
    est = _estimator("multiclass", max_iter=3, tol=0.0)
    with pytest.warns(ConvergenceWarning, match=r"Maximum iterations \(3\) reached"):
        est.fit(X, y)
    assert est.n_iter_ == 3


def test_early_stopping_keeps_the_best_epoch():
    X, y = _data("multiclass", n=200)
    est = _estimator(
        "multiclass",
        early_stopping=True,
        max_iter=200,
        n_iter_no_change=5,
        learning_rate_init=0.05,
        validation_fraction=0.25,
    )
    est.fit(X, y)
    assert est.n_iter_ < 200
    assert est.best_validation_score_ == max(est.validation_scores_)
    best = int(np.argmax(est.validation_scores_))
    assert len(est.validation_scores_) - 1 - best > 5 - 1  # stopped after patience


@pytest.mark.parametrize("schedule", ["invscaling", "adaptive"])
def test_sgd_learning_rate_schedules(schedule):
    X, y = _data("regression", n=60)
    est = _estimator(
        "regression",
        solver="sgd",
        learning_rate=schedule,
        learning_rate_init=0.01,
        tol=1e3,
        n_iter_no_change=2,
        max_iter=400,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
        twin = _sklearn_twin(est).fit(X, y)
    assert est.n_iter_ == twin.n_iter_
    lr = est.model_.optimizer.lr / 0.5  # regression, one output: scale 1/2
    if schedule == "invscaling":
        assert lr == pytest.approx(0.01 / (est.t_ + 1) ** 0.5)
    else:
        assert lr <= 1e-6


# -- weights ---------------------------------------------------------------------------


@pytest.mark.parametrize("class_weight", ["balanced", {0: 1.0, 1: 3.0, 2: 0.5}])
def test_class_weight_is_sample_weight(class_weight):
    X, y = _data("multiclass")
    w = np.linspace(0.5, 2.0, len(y))
    a = _estimator("multiclass", class_weight=class_weight, max_iter=5)
    b = _estimator("multiclass", max_iter=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a.fit(X, y, sample_weight=w)
        b.fit(X, y, sample_weight=w * compute_sample_weight(class_weight, y))
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


def test_bad_weights_are_refused():
    X, y = _data("multiclass")
    est = _estimator("multiclass", max_iter=1)
    with pytest.raises(ValueError, match="non-negative"):
        est.fit(X, y, sample_weight=-np.ones(len(y)))
    with pytest.raises(ValueError, match="shape"):
        est.fit(X, y, sample_weight=np.ones(3))
    Xm, ym = _data("multilabel")
    with pytest.raises(ValueError, match="multilabel"):
        _estimator("multilabel", class_weight="balanced").fit(Xm, ym)
    with pytest.raises(ValueError, match="partial_fit"):
        _estimator("multiclass", class_weight="balanced").partial_fit(
            X, y, classes=[0, 1, 2]
        )


# -- partial_fit, warm_start -----------------------------------------------------------


def test_partial_fit_runs_one_epoch_at_a_time():
    X, y = _data("multiclass")
    est = _estimator("multiclass")
    with pytest.raises(ValueError, match="classes must be passed"):
        est.partial_fit(X, y)
    with pytest.raises(ValueError, match="not in `self.classes_`"):
        _estimator("multiclass").partial_fit(X, y, classes=[0, 1])  # y holds 2
    est.partial_fit(X[:20], y[:20], classes=[0, 1, 2, 3])
    est.partial_fit(X[20:], y[20:])
    assert est.n_iter_ == 1 and len(est.loss_curve_) == 2 and est.t_ == len(X)
    assert list(est.classes_) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="not in `self.classes_`"):
        est.partial_fit(X, y + 4)
    with pytest.raises(ValueError, match="features"):
        est.partial_fit(X[:, :2], y)
    with pytest.raises(ValueError, match="early_stopping"):
        _estimator("multiclass", early_stopping=True).partial_fit(
            X, y, classes=[0, 1, 2]
        )


@quiet
def test_warm_start_continues_and_cold_start_restarts():
    X, y = _data("regression")
    cold = _estimator("regression", max_iter=2).fit(X, y)
    first = cold.model_.params.copy()
    cold.fit(X, y)
    np.testing.assert_array_equal(cold.model_.params, first)  # same seed, same run
    warm = _estimator("regression", max_iter=2, warm_start=True).fit(X, y)
    warm.fit(X, y)
    assert len(warm.loss_curve_) == 4 and warm.t_ == 4 * len(X)
    assert not np.array_equal(warm.model_.params, first)


# -- parameters, errors ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"solver": "lbfgs"}, "lbfgs"),
        ({"activation": "softmax"}, "activation"),
        ({"learning_rate": "optimal"}, "learning_rate"),
        ({"alpha": -1.0}, "alpha"),
        ({"hidden_layer_sizes": (4, 0)}, r"hidden_layer_sizes\[1\]"),
        ({"batch_size": 0}, "batch_size"),
        ({"momentum": 1.5}, "momentum"),
        ({"n_iter_no_change": 0}, "n_iter_no_change"),
    ],
)
def test_bad_parameters_are_refused(params, match):
    X, y = _data("multiclass")
    with pytest.raises(ValueError, match=match):
        _estimator("multiclass", **params).fit(X, y)


def test_regressor_takes_only_the_squared_error():
    X, y = _data("regression")
    with pytest.raises(ValueError, match="poisson"):
        MLPRegressor(loss="poisson").fit(X, y)


@quiet
def test_later_targets_must_match_the_first():
    X, y = _data("regression2")
    est = _estimator("regression2", max_iter=1).fit(X, y)
    with pytest.raises(ValueError, match="outputs"):
        est.partial_fit(X, y[:, 0])
    Xm, ym = _data("multilabel")
    clf = _estimator("multilabel", max_iter=1).fit(Xm, ym)
    with pytest.raises(ValueError, match="kind of target"):
        clf.partial_fit(Xm, ym[:, :2])


def test_divergence_is_a_value_error():
    X, y = _data("regression")
    est = _estimator("regression", solver="sgd", learning_rate_init=1e3, max_iter=50)
    with pytest.raises(ValueError, match="diverged"):
        est.fit(X * 1e3, y * 1e3)


@quiet
def test_verbose_prints_the_loss(capsys):
    X, y = _data("multiclass")
    _estimator("multiclass", max_iter=2, verbose=True).fit(X, y)
    assert capsys.readouterr().out.count("Iteration") == 2


def test_coefs_are_views_into_the_model():
    X, y = _data("regression")
    est = _estimator("regression", max_iter=1)
    with pytest.warns(ConvergenceWarning):
        est.fit(X, y)
    est.intercepts_[-1][...] += 1.0
    np.testing.assert_allclose(est.predict(X), est.model_.predict(X)[:, 0])
    assert np.shares_memory(est.intercepts_[-1], est.model_.params)


# -- pickling (for transport: joblib, Dask) --------------------------------------------


def test_mlp_pickles_and_trains_on_identically():
    X, y = _data("multiclass")
    model = fastnn.MLP([4, 6, 3], loss="cross_entropy", seed=0)
    model.fit(X, y, epochs=2, batch_size=8)
    copy = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(copy.predict(X), model.predict(X))
    assert np.shares_memory(copy.weights[0], copy.params)
    model.fit(X, y, epochs=2, batch_size=8)
    copy.fit(X, y, epochs=2, batch_size=8)
    np.testing.assert_array_equal(copy.params, model.params)


@pytest.mark.parametrize("kind", ["multiclass", "regression2"])
@quiet
def test_estimators_pickle_and_train_on_identically(kind):
    X, y = _data(kind)
    est = _estimator(kind, max_iter=3).fit(X, y)
    copy = pickle.loads(pickle.dumps(est))
    predict = "predict_proba" if kind == "multiclass" else "predict"
    np.testing.assert_array_equal(getattr(copy, predict)(X), getattr(est, predict)(X))
    est.partial_fit(X, y)
    copy.partial_fit(X, y)
    np.testing.assert_array_equal(copy.model_.params, est.model_.params)
    assert copy.loss_curve_ == est.loss_curve_
    assert np.shares_memory(copy.coefs_[0], copy.model_.params)


@quiet
def test_estimator_loaded_as_read_only_memory_map_works(tmp_path):
    """joblib.load(..., mmap_mode="r"), the way to share one model between
    processes, gives read-only arrays; the model must still predict and train."""
    joblib = pytest.importorskip("joblib")
    X, y = _data("multiclass")
    est = _estimator("multiclass", max_iter=3).fit(X, y)
    joblib.dump(est, tmp_path / "est.joblib")
    loaded = joblib.load(tmp_path / "est.joblib", mmap_mode="r")
    np.testing.assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))
    loaded.partial_fit(X, y)
    est.partial_fit(X, y)
    np.testing.assert_array_equal(loaded.model_.params, est.model_.params)


# -- real data -------------------------------------------------------------------------


def test_digits_accuracy_is_sklearns_or_better():
    """examples/digits.py: same network and settings, 50 epochs each; fastnn's test
    accuracy is at least scikit-learn's minus one point."""
    spec = importlib.util.spec_from_file_location(
        "digits", ROOT / "examples" / "digits.py"
    )
    digits = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(digits)
    results = digits.compare(epochs=50, repeats=1)
    assert results["fastnn"]["epochs"] == results["sklearn"]["epochs"] == 50
    assert results["fastnn"]["accuracy"] >= results["sklearn"]["accuracy"] - 0.01
    assert results["fastnn"]["accuracy"] > 0.9
