"""fastnn.onnx's skl2onnx converters: pipelines holding fastnn's estimators, their
options, and skl2onnx's graphs of scikit-learn's and fastnn's MLPs imported back."""

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from fastnn.onnx import from_onnx, to_onnx  # noqa: E402

from _onnx_helpers import RTOL, run_ort  # noqa: E402

# -- skl2onnx -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def skl2onnx():
    return pytest.importorskip("skl2onnx")


def _xy(n_classes, dtype, n=60, labels=None):
    rng = np.random.default_rng(7)
    X = rng.normal(size=(n, 4)).astype(dtype)
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5) * (n_classes > 2)
    return X, (y if labels is None else np.asarray(labels)[y])


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize(
    "labels", [None, ["no", "yes"], ["a", "b", "c"], [2.0, 7.0, 9.0]],
    ids=["binary_int", "binary_str", "multiclass_str", "multiclass_float"],
)  # fmt: skip
def test_skl2onnx_pipeline_classifier(skl2onnx, labels, dtype):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from fastnn.sklearn import MLPClassifier

    n_classes = 2 if labels is None else len(labels)
    X, y = _xy(n_classes, dtype, labels=labels)
    pipe = make_pipeline(
        StandardScaler(),
        MLPClassifier(hidden_layer_sizes=(6,), max_iter=5, random_state=0),
    ).fit(X, y)
    proto = skl2onnx.to_onnx(pipe, X[:1], options={"zipmap": False})
    label, proba = _run_all(proto, X)
    want = pipe.predict(X)
    if want.dtype.kind == "f":  # skl2onnx's convention: int64 labels
        want = want.astype(np.int64)
    assert np.array_equal(label, want)
    rtol = RTOL[np.dtype(dtype).type] * 10  # the scaler runs in ONNX too
    np.testing.assert_allclose(proba, pipe.predict_proba(X), rtol=rtol, atol=1e-6)
    if dtype == np.float64:
        return  # ONNX's ZipMap takes float32 only: no zipmap option in float64
    zipped = skl2onnx.to_onnx(pipe, X[:1])  # zipmap by default: a list of dicts
    _, maps = _run_all(zipped, X[:3])
    assert len(maps) == 3 and len(maps[0]) == len(pipe.classes_)
    np.testing.assert_allclose(list(maps[0].values()), proba[0], rtol=1e-6)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_skl2onnx_options_nocl_and_class_labels(skl2onnx):
    from fastnn.sklearn import MLPClassifier

    X, y = _xy(3, np.float32, labels=["a", "b", "c"])
    est = MLPClassifier(hidden_layer_sizes=(5,), max_iter=3, random_state=0)
    est.fit(X, y)
    options = {"zipmap": False, "nocl": True}
    label, _ = _run_all(skl2onnx.to_onnx(est, X[:1], options=options), X)
    assert np.array_equal(est.classes_[label], est.predict(X))
    options = {"zipmap": False, "output_class_labels": True}
    label, _, names = _run_all(skl2onnx.to_onnx(est, X[:1], options=options), X)
    assert list(names) == list(est.classes_)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("n_classes", [2, 3])
def test_import_skl2onnx_fastnn_classifier(skl2onnx, n_classes):
    from fastnn.sklearn import MLPClassifier

    X, y = _xy(n_classes, np.float64)
    est = MLPClassifier(hidden_layer_sizes=(5,), max_iter=3, random_state=0)
    est.fit(X, y)
    model = from_onnx(skl2onnx.to_onnx(est, X[:1], options={"zipmap": False}))
    assert np.array_equal(model.params, est.model_.params)
    assert model.output == ("sigmoid" if n_classes == 2 else "softmax")


def _run_all(proto, X):
    sess = ort.InferenceSession(
        proto.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    return sess.run(None, {sess.get_inputs()[0].name: X})


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_skl2onnx_multilabel(skl2onnx):
    from fastnn.sklearn import MLPClassifier

    X, _ = _xy(2, np.float32)
    Y = np.stack([X[:, 0] > 0, X[:, 1] > 0, X[:, 2] > 1], axis=1).astype(int)
    est = MLPClassifier(hidden_layer_sizes=(6,), max_iter=5, random_state=0).fit(X, Y)
    label, proba = _run_all(skl2onnx.to_onnx(est, X[:1], options={"zipmap": False}), X)
    assert np.array_equal(label, est.predict(X))
    np.testing.assert_allclose(proba, est.predict_proba(X), rtol=1e-5, atol=1e-7)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("n_outputs", [1, 2])
def test_skl2onnx_pipeline_regressor(skl2onnx, n_outputs, dtype):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from fastnn.sklearn import MLPRegressor

    X, _ = _xy(2, dtype)
    y = X[:, :n_outputs] * 2 + 1
    y = y[:, 0] if n_outputs == 1 else y
    pipe = make_pipeline(
        StandardScaler(),
        MLPRegressor(hidden_layer_sizes=(6,), max_iter=5, random_state=0),
    ).fit(X, y)
    (pred,) = _run_all(skl2onnx.to_onnx(pipe, X[:1]), X)
    assert pred.shape == (X.shape[0], n_outputs)
    want = pipe.predict(X).reshape(X.shape[0], -1)
    rtol = RTOL[np.dtype(dtype).type] * 10
    np.testing.assert_allclose(pred, want, rtol=rtol, atol=1e-6)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_to_onnx_takes_fitted_estimators(skl2onnx):
    from sklearn.exceptions import NotFittedError

    from fastnn.sklearn import MLPClassifier

    X, y = _xy(3, np.float64)
    est = MLPClassifier(hidden_layer_sizes=(5,), max_iter=3, random_state=0)
    with pytest.raises(NotFittedError):
        to_onnx(est)
    est.fit(X, y)
    np.testing.assert_allclose(
        run_ort(to_onnx(est), X), est.predict_proba(X), rtol=1e-10, atol=1e-15
    )


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("kind", ["binary", "multiclass", "regressor"])
def test_import_skl2onnx_sklearn_mlp(skl2onnx, kind):
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    X, y = _xy(2 if kind == "binary" else 3, np.float32)
    if kind == "regressor":
        est = MLPRegressor(
            hidden_layer_sizes=(7, 5), activation="tanh", max_iter=20, random_state=0
        )
        est.fit(X, X[:, 0] - X[:, 1])
        proto = skl2onnx.to_onnx(est, X[:1])
    else:
        est = MLPClassifier(
            hidden_layer_sizes=(7,), activation="logistic", max_iter=20, random_state=0
        )
        est.fit(X, y)
        proto = skl2onnx.to_onnx(est, X[:1], options={"zipmap": False})
    model = from_onnx(proto)
    assert model.sizes[1:-1] == list(est.hidden_layer_sizes)
    P = model.predict(X)
    if kind == "regressor":
        assert model.loss_name == "mse"
        want = est.predict(X)[:, None]
    elif kind == "binary":
        assert (model.output, model.loss_name) == ("sigmoid", "bce")
        want = est.predict_proba(X)[:, 1:]
    else:
        assert (model.output, model.loss_name) == ("softmax", "cross_entropy")
        want = est.predict_proba(X)
    np.testing.assert_allclose(P, want, rtol=1e-5, atol=1e-6)
