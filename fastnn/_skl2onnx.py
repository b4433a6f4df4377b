"""skl2onnx converters for :mod:`fastnn.sklearn`'s estimators (see
:func:`register_skl2onnx`, which importing :mod:`fastnn.onnx` calls)."""

import numpy as np
from onnx import TensorProto, helper

from ._onnx_export import NUMPY_TYPES, ONNX_TYPES, emit_network


class _ContainerEmitter:
    """What :func:`emit_network` writes, into a skl2onnx scope and container."""

    def __init__(self, scope, container):
        self.scope, self.container = scope, container

    def name(self, hint):
        return self.scope.get_unique_variable_name(hint)

    def tensor(self, hint, array):
        array = np.ascontiguousarray(array)
        name = self.name(hint)
        self.container.add_initializer(
            name,
            helper.np_dtype_to_tensor_dtype(array.dtype),
            list(array.shape),
            array.ravel(),
        )
        return name

    def node(self, op, inputs, output, **attrs):
        self.container.add_node(
            op, inputs, output, name=self.scope.get_unique_operator_name(op), **attrs
        )


def _network_output(scope, operator, container):
    """Emit the estimator's network on the operator's input; returns the name of its
    output tensor (of the input's float type) and the emitter."""
    net = operator.raw_operator.model_
    emit = _ContainerEmitter(scope, container)
    model_type = ONNX_TYPES[np.dtype(net.dtype)]
    in_type = _input_float_type(operator)
    source = operator.inputs[0].full_name
    if operator.inputs[0].type.to_onnx_type().tensor_type.elem_type != model_type:
        cast = emit.name("cast_input")
        emit.node("Cast", [source], cast, to=model_type)
        source = cast
    out = emit.name("network_output")
    emit_network(net, source, out, emit)
    if in_type != model_type:
        cast = emit.name("cast_output")
        emit.node("Cast", [out], cast, to=in_type)
        out = cast
    return out, emit


def _input_float_type(operator):
    """skl2onnx gives outputs the input's type when it is DOUBLE, else FLOAT."""
    elem = operator.inputs[0].type.to_onnx_type().tensor_type.elem_type
    return TensorProto.DOUBLE if elem == TensorProto.DOUBLE else TensorProto.FLOAT


def _is_multilabel(est):
    return est.out_activation_ == "logistic" and est.model_.sizes[-1] > 1


def _convert_classifier(scope, operator, container):
    """Label and probabilities of a fastnn ``MLPClassifier``, as skl2onnx converts
    scikit-learn's: the probabilities (N, n_classes) are ``[1 - p, p]`` for binary
    targets, the network's softmax otherwise; the label is the class of the largest
    probability (the labels (N, n_labels) of ``p > 0.5`` for multilabel targets)."""
    est = operator.raw_operator
    p, emit = _network_output(scope, operator, container)
    label, proba = operator.outputs[0].full_name, operator.outputs[1].full_name
    float_type = NUMPY_TYPES[_input_float_type(operator)]
    if _is_multilabel(est):
        emit.node("Identity", [p], proba)
        half = emit.tensor("half", np.array(0.5, float_type))
        above = emit.name("above_half")
        emit.node("Greater", [p, half], above)
        emit.node("Cast", [above], label, to=TensorProto.INT64)
        return
    if est.model_.sizes[-1] == 1:  # binary: P(classes_[1]) only
        one = emit.tensor("one", np.array([[1]], float_type))
        negative = emit.name("negative_proba")
        emit.node("Sub", [one, p], negative)
        emit.node("Concat", [negative, p], proba, axis=1)
    else:
        emit.node("Identity", [p], proba)
    index = emit.name("argmax")
    emit.node("ArgMax", [proba], index, axis=1, keepdims=0)
    from skl2onnx.common.utils_classifier import get_label_classes

    classes = np.asarray(get_label_classes(scope, est))  # indices with nocl=True
    if classes.dtype.kind in "biuf":  # skl2onnx's label type: int64
        names = emit.tensor("classes", classes.astype(np.int64))
    else:
        names = emit.name("classes")
        encoded = [str(c).encode("utf-8") for c in classes]
        container.add_initializer(names, TensorProto.STRING, [len(encoded)], encoded)
    emit.node("Gather", [names, index], label, axis=0)


def _convert_regressor(scope, operator, container):
    """Predictions (N, n_outputs) of a fastnn ``MLPRegressor``."""
    out, emit = _network_output(scope, operator, container)
    emit.node("Identity", [out], operator.outputs[0].full_name)


def _classifier_shapes(operator):
    from skl2onnx.common.data_types import Int64TensorType
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
    )

    calculate_linear_classifier_output_shapes(operator)
    est = operator.raw_operator
    if _is_multilabel(est):  # scikit-learn's estimator says so with multilabel_
        n = operator.inputs[0].get_first_dimension()
        operator.outputs[0].type = Int64TensorType([n, est.model_.sizes[-1]])


def _regressor_shapes(operator):
    from skl2onnx.common.utils import check_input_and_output_numbers

    check_input_and_output_numbers(operator, input_count_range=1, output_count_range=1)
    n = operator.inputs[0].get_first_dimension()
    if _input_float_type(operator) == TensorProto.DOUBLE:
        from skl2onnx.common.data_types import DoubleTensorType as out_type
    else:
        from skl2onnx.common.data_types import FloatTensorType as out_type
    operator.outputs[0].type = out_type([n, operator.raw_operator.model_.sizes[-1]])


def register_skl2onnx():
    """Register converters for :mod:`fastnn.sklearn`'s estimators with skl2onnx.

    Importing :mod:`fastnn.onnx` calls it when skl2onnx is installed; afterwards
    ``skl2onnx.to_onnx(pipeline, X[:1])`` converts a pipeline that holds a fitted
    ``fastnn.sklearn.MLPClassifier`` (aliased ``FastnnMLPClassifier``: outputs
    ``label`` of shape (N,) and ``probabilities`` of shape (N, n_classes), with
    skl2onnx's ``zipmap``, ``nocl`` and ``output_class_labels`` options as for
    scikit-learn's MLPClassifier) or ``fastnn.sklearn.MLPRegressor``
    (``FastnnMLPRegressor``: ``variable`` of shape (N, n_outputs)).

    Returns
    -------
    bool
        Whether skl2onnx was found and the converters registered.
    """
    try:
        from skl2onnx import update_registered_converter
    except ImportError:
        return False
    from .sklearn import MLPClassifier, MLPRegressor

    update_registered_converter(
        MLPClassifier,
        "FastnnMLPClassifier",
        _classifier_shapes,
        _convert_classifier,
        options={
            "zipmap": [True, False, "columns"],
            "output_class_labels": [False, True],
            "nocl": [True, False],
        },
    )
    update_registered_converter(
        MLPRegressor, "FastnnMLPRegressor", _regressor_shapes, _convert_regressor
    )
    return True
