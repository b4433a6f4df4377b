"""``fastnn.explain`` refuses bad input (X, targets, integrated gradients' steps and
baseline, something that is not a model) with a clear error and leaves the model as
it was; explaining never changes the model or X."""

import numpy as np
import pytest

from fastnn import explain

from _explain_helpers import METHODS, SIZES, call, data, make_model

# -- bad input -------------------------------------------------------------------------

X_OK = np.random.default_rng(0).standard_normal((4, SIZES[0]))
NAN_X = X_OK.copy()
NAN_X[1, 2] = np.nan
BAD = {
    "X 1-D": (dict(X=X_OK[0]), ValueError),
    "X 3-D": (dict(X=X_OK[None]), ValueError),
    "X wrong features": (dict(X=X_OK[:, :3]), ValueError),
    "X empty": (dict(X=X_OK[:0]), ValueError),
    "X NaN": (dict(X=NAN_X), ValueError),
    "X inf": (dict(X=NAN_X * 0 + np.inf), ValueError),
    "X strings": (dict(X=X_OK.astype(str)), TypeError),
    "X complex": (dict(X=X_OK.astype(complex)), TypeError),
    "target too big": (dict(target=SIZES[-1]), ValueError),
    "target negative": (dict(target=-1), ValueError),
    "target row too big": (dict(target=[0, 1, 3, 0]), ValueError),
    "target too short": (dict(target=[0, 1, 2]), ValueError),
    "target 2-D": (dict(target=[[0, 1, 2, 0]]), ValueError),
    "target float": (dict(target=1.0), TypeError),
    "target floats": (dict(target=[0.0, 1.0, 2.0, 0.0]), TypeError),
    "target bool": (dict(target=True), TypeError),
    "target string": (dict(target="cat"), TypeError),
    "model not an MLP": (dict(model="mlp"), TypeError),
    "estimator not fitted": (dict(model=object()), TypeError),
}
BAD_IG = {
    "steps 0": (dict(steps=0), ValueError),
    "steps negative": (dict(steps=-3), ValueError),
    "steps float": (dict(steps=2.5), TypeError),
    "steps bool": (dict(steps=True), TypeError),
    "baseline wrong length": (dict(baseline=np.zeros(4)), ValueError),
    "baseline wrong rows": (dict(baseline=np.zeros((3, SIZES[0]))), ValueError),
    "baseline 3-D": (dict(baseline=np.zeros((1, 1, SIZES[0]))), ValueError),
    "baseline NaN": (dict(baseline=np.full(SIZES[0], np.nan)), ValueError),
    "baseline strings": (dict(baseline=np.zeros(SIZES[0]).astype(str)), TypeError),
}
CASES = [(m, k) for m in METHODS for k in BAD] + [
    ("integrated_gradients", k) for k in BAD_IG
]


@pytest.mark.parametrize(("method", "case"), CASES)
def test_bad_input_is_refused_and_model_unchanged(method, case):
    model = make_model()
    before = (model.params.copy(), model.grads.copy(), model.optimizer.state.copy())
    kwargs, error = {**BAD, **BAD_IG}[case]
    kwargs = {"model": model, "X": X_OK, **kwargs}
    with pytest.raises(error):
        getattr(explain, method)(**kwargs)
    after = (model.params, model.grads, model.optimizer.state)
    for old, new in zip(before, after, strict=True):
        np.testing.assert_array_equal(old, new)


def test_model_unchanged_by_explaining(rng):
    model = make_model()
    model.train_step(data(rng), np.eye(3)[[0, 1, 2, 0, 1, 2]])
    before = (model.params.copy(), model.grads.copy(), model.optimizer.state.copy())
    X = data(rng)
    X_before = X.copy()
    for method in METHODS:
        call(method, model, X)
    after = (model.params, model.grads, model.optimizer.state)
    for old, new in zip(before, after, strict=True):
        np.testing.assert_array_equal(old, new)
    np.testing.assert_array_equal(X, X_before)
