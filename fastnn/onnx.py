"""ONNX export and import of fastnn models; skl2onnx converters for the estimators.

:func:`to_onnx` writes a :class:`fastnn.MLP` (or a fitted :mod:`fastnn.sklearn`
estimator) as a chain of standard ONNX operators that onnxruntime, or any other ONNX
runtime, evaluates to what :meth:`fastnn.MLP.predict` computes. :func:`from_onnx`
reads such a chain back, whether fastnn, skl2onnx (scikit-learn's ``MLPClassifier``
and ``MLPRegressor``) or ``torch.onnx.export`` (an ``nn.Sequential`` of ``Linear``
layers and activations) wrote it.

Importing this module also registers converters with skl2onnx, when skl2onnx is
installed, so that ``skl2onnx.to_onnx(pipeline, X[:1])`` converts scikit-learn
pipelines that hold a fitted :class:`fastnn.sklearn.MLPClassifier` or
:class:`fastnn.sklearn.MLPRegressor`, with skl2onnx's conventions for scikit-learn's
own MLPs (see :func:`register_skl2onnx`).

The graph of a model, layer by layer:

- ``Gemm(A, W, b)``, ``W`` of shape (n_in, n_out) as fastnn keeps it;
- with batch normalization, ``BatchNormalization`` (inference form: the running
  mean and variance, ``gamma``, ``beta`` and ``epsilon``);
- the activation: ``Sigmoid``, ``Tanh``, ``Relu``, ``Softmax`` (axis 1), nothing for
  identity, and for leaky relu ``LeakyRelu`` (alpha 0.01) in float32 but ``PRelu``
  with a float64 slope of 0.01 in float64: ``LeakyRelu``'s ``alpha`` attribute is a
  32-bit float, 0.01 rounded to float32, which is 2e-8 away from fastnn's slope.

Requires the ``onnx`` package (``pip install fastnn[onnx]``, which also brings
onnxruntime and skl2onnx).
"""

import os

import numpy as np

try:
    import onnx
    from onnx import helper
except ImportError as err:  # pragma: no cover - the extra is part of the test extra
    raise ImportError(
        "fastnn.onnx needs the onnx package: pip install 'fastnn[onnx]'"
    ) from err

from . import __version__
from ._onnx_export import ONNX_TYPES, ProtoEmitter, emit_network
from ._onnx_import import check_layers, load, read_layers
from ._skl2onnx import register_skl2onnx
from .kernels.layout import running_views
from .model import MLP

__all__ = ["to_onnx", "from_onnx", "register_skl2onnx", "DEFAULT_OPSET", "MIN_OPSET"]

#: Opset of the default domain that :func:`to_onnx` targets unless told otherwise.
DEFAULT_OPSET = 17
#: The oldest opset :func:`to_onnx` writes (Softmax's axis semantics of opset 13).
MIN_OPSET = 13
INPUT_NAME, OUTPUT_NAME = "input", "output"
_LOSS_OF_OUTPUT = {"softmax": "cross_entropy", "sigmoid": "bce"}  # else "mse"
_LOSSES = ("mse", "bce", "cross_entropy")


# -- export -------------------------------------------------------------------------


def _as_mlp(model):
    """The :class:`fastnn.MLP` of ``model``: the model itself, or an estimator's
    ``model_`` (``NotFittedError``, a ``ValueError``, if it has none yet)."""
    if isinstance(model, MLP):
        return model
    if hasattr(model, "get_params") and hasattr(model, "fit"):  # an estimator
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(model, "model_")
        if isinstance(model.model_, MLP):
            return model.model_
    raise TypeError(
        "to_onnx takes a fastnn.MLP or a fitted fastnn.sklearn estimator, got "
        f"{type(model).__name__}"
    )


def _check_opset(opset):
    latest = onnx.defs.onnx_opset_version()
    opset = DEFAULT_OPSET if opset is None else opset
    if isinstance(opset, bool) or not isinstance(opset, int | np.integer):
        raise TypeError(f"opset must be an int, got {opset!r}")
    if not MIN_OPSET <= opset <= latest:
        raise ValueError(
            f"opset must lie in {MIN_OPSET}..{latest} (the onnx package's newest), "
            f"got {opset}"
        )
    return int(opset)


def to_onnx(model, path=None, *, opset=None):
    """Export a model as an ONNX graph of standard operators.

    Parameters
    ----------
    model : fastnn.MLP or fitted fastnn.sklearn estimator
        For an estimator, its network ``model_`` is exported: the graph gives the
        network's outputs (for a classifier, the probabilities of the positive class
        or of each class, not labels; convert a pipeline with skl2onnx for labels).
    path : str or os.PathLike, optional
        Where to write the model as well.
    opset : int, optional
        Opset of the default ONNX domain, ``MIN_OPSET`` (13) or newer; default
        ``DEFAULT_OPSET`` (17).

    Returns
    -------
    onnx.ModelProto
        One input ``"input"`` of shape (N, n_in) and one output ``"output"`` of
        shape (N, n_out), ``N`` symbolic, FLOAT for a float32 model and DOUBLE for
        a float64 one. ``producer_name`` is "fastnn"; ``metadata_props`` hold
        ``fastnn_version`` and the model's ``loss``.

    Notes
    -----
    The operators are listed in the module docstring. onnxruntime's outputs match
    :meth:`fastnn.MLP.predict` to rounding (the order of the sums differs):
    1e-5 relative in float32, 1e-10 in float64. Dropout is an identity at inference
    and does not appear in the graph.
    """
    net = _as_mlp(model)
    opset = _check_opset(opset)
    elem = ONNX_TYPES[np.dtype(net.dtype)]
    emit = ProtoEmitter()
    emit_network(net, INPUT_NAME, OUTPUT_NAME, emit)
    graph = helper.make_graph(
        emit.nodes,
        "fastnn_mlp",
        [helper.make_tensor_value_info(INPUT_NAME, elem, ["N", net.sizes[0]])],
        [helper.make_tensor_value_info(OUTPUT_NAME, elem, ["N", net.sizes[-1]])],
        initializer=emit.initializers,
    )
    opsets = [helper.make_opsetid("", opset)]
    proto = helper.make_model(
        graph,
        opset_imports=opsets,
        ir_version=helper.find_min_ir_version_for(opsets),
        producer_name="fastnn",
        producer_version=__version__,
        doc_string=repr(net),
    )
    helper.set_model_props(
        proto, {"fastnn_version": __version__, "loss": net.loss_name}
    )
    onnx.checker.check_model(proto)
    if path is not None:
        onnx.save_model(proto, os.fspath(path))
    return proto


# -- import -------------------------------------------------------------------------


def from_onnx(source, **kwargs):
    """Build a :class:`fastnn.MLP` from an ONNX graph that is a chain of dense layers.

    Parameters
    ----------
    source : str, os.PathLike, bytes or onnx.ModelProto
        The model: a file, its serialized bytes, or a loaded proto.
    **kwargs
        Passed on to :class:`fastnn.MLP` (``optimizer``, ``seed``, ``loss``, ...)
        for training the imported model further.

    Returns
    -------
    fastnn.MLP
        ``sizes``, activations, weights of shape (n_in, n_out), biases of shape
        (n_out,), and batch normalization (``gamma``, ``beta``, running statistics,
        ``bn_eps``) as in the graph; the dtype of its weights (float32 or float64).
        The loss is the one fastnn's export recorded, else it follows the output:
        ``"cross_entropy"`` for softmax, ``"bce"`` for sigmoid, ``"mse"`` otherwise.
        The model is in inference mode (``model.eval()``).

    Raises
    ------
    ValueError
        When ``source`` is not an ONNX model, or is not a chain of ``Gemm`` (or
        ``MatMul`` + ``Add``) layers, each optionally followed by
        ``BatchNormalization`` (hidden layers) and one of ``Sigmoid``, ``Tanh``,
        ``Relu``, ``LeakyRelu`` (alpha 0.01), ``PRelu`` (slope 0.01), ``Softmax``
        (last axis, output layer only): unsupported operators (the message names
        them), branches, weights that are not initializers. ``Identity``,
        inference ``Dropout``, a ``Cast`` to the weights' dtype and no-op ``Flatten``
        or ``Reshape`` are skipped. Nothing is built unless the whole graph is read.

    Notes
    -----
    Accepted sources include fastnn's :func:`to_onnx`; skl2onnx's conversion of
    scikit-learn's ``MLPClassifier`` and ``MLPRegressor`` (and of fastnn's own
    estimators) on their own, not in a pipeline: convert classifiers with
    ``options={"zipmap": False}``, the network is read up to the probabilities and
    the label nodes beside them are ignored (a binary classifier gives a model of
    one sigmoid output, the probability of ``classes_[1]``); and
    ``torch.onnx.export`` of an ``nn.Sequential`` of ``Linear`` layers and
    activations in eval mode. A fastnn round trip is exact: same weights, same
    predictions, bit for bit.
    """
    proto = load(source)
    layers = read_layers(proto)
    dtype, eps = check_layers(layers)
    output = layers[-1][4]
    props = {p.key: p.value for p in proto.metadata_props}
    loss = _LOSS_OF_OUTPUT.get(output, "mse")
    if proto.producer_name == "fastnn" and props.get("loss") in _LOSSES:
        loss = props["loss"]
    options = {"loss": loss, "dtype": dtype, "seed": 0, **kwargs}
    sizes = [layers[0][0].shape[0]] + [W.shape[1] for W, *_ in layers]
    model = MLP(
        sizes,
        hidden=[layer[4] for layer in layers[:-1]],
        output=output,
        batch_norm=[layer[2] is not None for layer in layers[:-1]],
        bn_eps=eps,
        **options,
    )
    for i, (W, b, bn, _, _) in enumerate(layers):
        model.weights[i][...] = W
        model.biases[i][...] = b
        if bn is not None:
            gamma, beta = model.norm_params(i)
            mean, var = running_views(model.running_stats, model.layout, i)
            gamma[...], beta[...], mean[...], var[...] = bn
    return model.eval()


register_skl2onnx()
