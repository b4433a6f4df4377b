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
    from onnx import TensorProto, helper, numpy_helper
except ImportError as err:  # pragma: no cover - the extra is part of the test extra
    raise ImportError(
        "fastnn.onnx needs the onnx package: pip install 'fastnn[onnx]'"
    ) from err

from . import __version__
from .model import MLP

__all__ = ["to_onnx", "from_onnx", "register_skl2onnx", "DEFAULT_OPSET", "MIN_OPSET"]

#: Opset of the default domain that :func:`to_onnx` targets unless told otherwise.
DEFAULT_OPSET = 17
#: The oldest opset :func:`to_onnx` writes (Softmax's axis semantics of opset 13).
MIN_OPSET = 13
LEAKY_SLOPE = 0.01
INPUT_NAME, OUTPUT_NAME = "input", "output"

_ONNX_TYPES = {np.dtype(np.float32): TensorProto.FLOAT,
               np.dtype(np.float64): TensorProto.DOUBLE}  # fmt: skip
_NUMPY_TYPES = {code: dtype for dtype, code in _ONNX_TYPES.items()}
_ACTIVATION_OPS = {"sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "Relu",
                   "softmax": "Softmax"}  # fmt: skip
_ACTIVATION_NAMES = {op: name for name, op in _ACTIVATION_OPS.items()}
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


def _layers(model):
    """Per layer, ``(W, b, norm, activation name)``, ``norm`` being ``None`` or
    ``(gamma, beta, running mean, running var)``, all arrays of the model's dtype."""
    names = list(model.hidden) + [model.output]
    layers = []
    for layer, (_, n_out, _, _, norm, stats) in enumerate(model.layout):
        bn = None
        if norm:
            gamma, beta = model.norm_params(layer)
            running = model.running_stats[stats : stats + 2 * n_out]
            bn = (gamma, beta, running[:n_out], running[n_out:])
        layers.append((model.weights[layer], model.biases[layer], bn, names[layer]))
    return layers


def _emit_network(model, source, target, emit):
    """Write the nodes and initializers of ``model``'s forward pass.

    ``emit`` provides ``name(hint)`` (a fresh tensor name), ``tensor(hint, array)``
    (an initializer; returns its name) and ``node(op, inputs, output, **attrs)``.
    Reads tensor ``source`` (n_samples, n_in) of the model's dtype and writes tensor
    ``target`` (n_samples, n_out).
    """
    dtype = np.dtype(model.dtype)
    layers = _layers(model)
    steps = []  # (op, [inputs], attrs) in order; outputs are chained below
    for i, (W, b, bn, act) in enumerate(layers):
        w, c = emit.tensor(f"W{i}", W), emit.tensor(f"b{i}", b)
        steps.append(("Gemm", [w, c], {}))
        if bn is not None:
            gamma, beta, mean, var = (
                emit.tensor(f"{k}{i}", a)
                for k, a in zip(("gamma", "beta", "mean", "var"), bn, strict=True)
            )
            steps.append(("BatchNormalization", [gamma, beta, mean, var],
                          {"epsilon": float(model.bn_eps)}))  # fmt: skip
        if act == "leaky_relu" and dtype == np.float64:
            slope = emit.tensor(f"slope{i}", np.array([LEAKY_SLOPE], dtype))
            steps.append(("PRelu", [slope], {}))
        elif act == "leaky_relu":
            steps.append(("LeakyRelu", [], {"alpha": LEAKY_SLOPE}))
        elif act == "softmax":
            steps.append(("Softmax", [], {"axis": 1}))
        elif act != "identity":
            steps.append((_ACTIVATION_OPS[act], [], {}))
    current = source
    for k, (op, extra, attrs) in enumerate(steps):
        out = target if k == len(steps) - 1 else emit.name(op.lower())
        emit.node(op, [current, *extra], out, **attrs)
        current = out


class _ProtoEmitter:
    """Collects what :func:`_emit_network` writes into lists, for a plain graph."""

    def __init__(self):
        self.nodes, self.initializers, self._used = [], [], set()

    def name(self, hint):
        k = 0
        while f"{hint}_{k}" in self._used:
            k += 1
        self._used.add(f"{hint}_{k}")
        return f"{hint}_{k}"

    def tensor(self, hint, array):
        name = self.name(hint)
        self.initializers.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def node(self, op, inputs, output, **attrs):
        self.nodes.append(
            helper.make_node(op, inputs, [output], name=self.name(op), **attrs)
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
    elem = _ONNX_TYPES[np.dtype(net.dtype)]
    emit = _ProtoEmitter()
    _emit_network(net, INPUT_NAME, OUTPUT_NAME, emit)
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


def _load(source):
    """A checked ``ModelProto`` from a proto, bytes or a path; ``ValueError`` if it
    is not a valid ONNX model."""
    if isinstance(source, onnx.ModelProto):
        proto = source
    elif isinstance(source, bytes | bytearray):
        proto = _parse(lambda: onnx.load_from_string(bytes(source)), "the bytes")
    elif isinstance(source, str | os.PathLike):
        path = os.fspath(source)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"no such file: {path!r}")
        proto = _parse(lambda: onnx.load(path), repr(path))
    else:
        raise TypeError(
            "from_onnx takes a path, bytes or an onnx.ModelProto, got "
            f"{type(source).__name__}"
        )
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as err:
        raise ValueError(f"not a valid ONNX model: {err}") from err
    return proto


def _parse(load, what):
    try:
        return load()
    except Exception as err:  # protobuf's DecodeError and friends
        raise ValueError(f"{what} is not an ONNX model ({err})") from err


def _attrs(node):
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


class _Chain:
    """Walks a graph that must be one chain of operators, from its input to its
    output; nodes that do not lead to that output (labels beside probabilities)
    are left out."""

    def __init__(self, graph):
        self.constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        nodes = []
        for node in graph.node:
            if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
                attrs = node.attribute
                if len(attrs) != 1 or attrs[0].name != "value":
                    raise ValueError(f"unsupported Constant node {node.name!r}")
                self.constants[node.output[0]] = numpy_helper.to_array(attrs[0].t)
            else:
                nodes.append(node)
        inputs = [i for i in graph.input if i.name not in self.constants]
        if len(inputs) != 1:
            raise ValueError(
                f"the graph must have one input (a chain of dense layers), it has "
                f"{len(inputs)}"
            )
        self.input = inputs[0]
        self.output = _pick_output(graph.output)
        nodes = _leading_to(nodes, self.output)
        self.consumers = {}
        for node in nodes:
            for name in node.input:
                if name and name not in self.constants:
                    self.consumers.setdefault(name, []).append(node)
        self.n_nodes, self.seen = len(nodes), 0
        self.current = self.input.name

    def binary_tail(self):
        """Whether the current tensor ``p`` (N, 1) ends in skl2onnx's binary
        probabilities ``Concat(1 - p, p)``, which is then consumed."""
        users = self.consumers.get(self.current, [])
        ops = sorted(n.op_type for n in users)
        if ops != ["Concat", "Sub"]:
            return False
        sub, concat = sorted(users, key=lambda n: n.op_type != "Sub")
        one = self.constant(sub, 0) if sub.input[1] == self.current else None
        if (
            one is None
            or one.size != 1
            or one.reshape(-1)[0] != 1
            or list(concat.input) != [sub.output[0], self.current]
            or concat.output[0] != self.output
        ):
            return False
        self.seen += 2
        self.current = self.output
        return True

    def next(self):
        """The one node that reads the current tensor (None at the graph's end)."""
        users = self.consumers.get(self.current, [])
        if self.current == self.output and not users:
            return None
        if len(users) != 1:
            raise ValueError(
                f"tensor {self.current!r} is read by {len(users)} nodes: the graph "
                "is not a chain of layers (branches are not supported)"
                if users
                else f"tensor {self.current!r} leads nowhere: the graph is not a chain"
            )
        node = users[0]
        if node.domain not in ("", "ai.onnx"):
            raise ValueError(
                f"unsupported operator {node.domain}.{node.op_type} (node "
                f"{node.name!r})"
            )
        data = [n for n in node.input if n and n not in self.constants]
        if data != [self.current] or len(node.output) < 1:
            raise ValueError(
                f"node {node.name!r} ({node.op_type}) reads {len(data)} computed "
                "tensors: the graph is not a chain of layers (branches are not "
                "supported)"
            )
        return node

    def advance(self, node):
        self.current = node.output[0]
        extra = [o for o in node.output[1:] if o and o in self.consumers]
        if extra:
            raise ValueError(f"node {node.name!r} has more than one output in use")
        self.seen += 1

    def constant(self, node, index):
        """Input ``index`` of ``node``, which must be an initializer or Constant."""
        if index >= len(node.input) or not node.input[index]:
            return None
        name = node.input[index]
        if name not in self.constants:
            raise ValueError(
                f"input {name!r} of node {node.name!r} ({node.op_type}) is not an "
                "initializer (missing initializer, or a branch)"
            )
        return self.constants[name]


def _pick_output(outputs):
    """The name of the one float tensor among the graph's outputs."""
    floats = [
        o
        for o in outputs
        if o.type.HasField("tensor_type")
        and o.type.tensor_type.elem_type in _NUMPY_TYPES
    ]
    if len(floats) != 1:
        raise ValueError(
            f"the graph must have one float output, it has {len(floats)} among "
            f"{[o.name for o in outputs]} (convert skl2onnx classifiers with "
            "options={'zipmap': False})"
        )
    return floats[0].name


def _leading_to(nodes, output):
    """The nodes whose results lead to the tensor ``output``, in graph order."""
    wanted, keep = {output}, []
    for node in reversed(nodes):
        if wanted.intersection(node.output):
            keep.append(node)
            wanted.update(n for n in node.input if n)
    return keep[::-1]


def _dense(chain, node):
    """``(W (n_in, n_out), b (n_out,))`` of a Gemm, or of a MatMul and the Add
    after it."""
    if node.op_type == "Gemm":
        attrs = _attrs(node)
        if attrs.get("transA", 0):
            raise ValueError(f"Gemm node {node.name!r} with transA=1 is not supported")
        W = chain.constant(node, 1)
        if W is None or W.ndim != 2:
            raise ValueError(f"Gemm node {node.name!r} needs a 2-D weight initializer")
        W = W.T if attrs.get("transB", 0) else W
        W = (
            W * W.dtype.type(attrs.get("alpha", 1.0))
            if attrs.get("alpha", 1.0) != 1
            else W
        )
        C = chain.constant(node, 2)
        if C is not None and attrs.get("beta", 1.0) != 1:
            C = C * C.dtype.type(attrs["beta"])
        chain.advance(node)
        return W, _bias(C, W, node)
    W = chain.constant(node, 1)  # MatMul
    if W is None or W.ndim != 2:
        raise ValueError(f"MatMul node {node.name!r} needs a 2-D weight initializer")
    chain.advance(node)
    after = chain.next()
    if after is None or after.op_type != "Add":
        return W, _bias(None, W, node)
    index = 1 if after.input[0] == chain.current else 0
    C = chain.constant(after, index)
    chain.advance(after)
    return W, _bias(C, W, after)


def _bias(C, W, node):
    n_out = W.shape[1]
    if C is None:
        return np.zeros(n_out, W.dtype)
    if C.ndim > 2 or (C.ndim == 2 and C.shape[0] != 1) or C.size not in (1, n_out):
        raise ValueError(
            f"the bias of node {node.name!r} has shape {C.shape}; expected ({n_out},)"
        )
    return np.broadcast_to(C.reshape(-1), (n_out,)).astype(W.dtype)


def _batch_norm(chain, node, n_out):
    attrs = _attrs(node)
    if attrs.get("training_mode", 0):
        raise ValueError(f"BatchNormalization {node.name!r} is in training mode")
    arrays = [chain.constant(node, k) for k in range(1, 5)]
    if any(a is None or a.shape != (n_out,) for a in arrays):
        raise ValueError(
            f"BatchNormalization {node.name!r} needs scale, B, mean and var "
            f"initializers of shape ({n_out},)"
        )
    chain.advance(node)
    # epsilon is a float32 attribute; its shortest decimal form gives back what was
    # written (1e-5 and not 9.99999974738e-06), so a round trip keeps fastnn's eps
    return arrays, float(str(np.float32(attrs.get("epsilon", 1e-5))))


def _activation(chain, node, n_out, dtype):
    """fastnn's name of ``node``'s activation; ``None`` when ``node`` is no
    activation."""
    op, attrs = node.op_type, _attrs(node)
    if op in ("Sigmoid", "Tanh", "Relu"):
        return _ACTIVATION_NAMES[op]
    if op == "Softmax":
        if attrs.get("axis", -1) not in (1, -1):
            raise ValueError(f"Softmax over axis {attrs['axis']} is not supported")
        return "softmax"
    if op == "LeakyRelu":
        if np.float32(attrs.get("alpha", 0.01)) != np.float32(LEAKY_SLOPE):
            raise ValueError(
                f"LeakyRelu with alpha {attrs['alpha']:g} is not supported (fastnn's "
                f"slope is {LEAKY_SLOPE})"
            )
        return "leaky_relu"
    if op == "PRelu":
        slope = chain.constant(node, 1)
        if slope.size not in (1, n_out) or np.any(
            slope != np.asarray(LEAKY_SLOPE, dtype)
        ):
            raise ValueError(
                f"PRelu {node.name!r} with a slope other than {LEAKY_SLOPE} is not "
                "supported"
            )
        return "leaky_relu"
    return None


_PASS = ("Identity", "Dropout", "Flatten", "Reshape", "Cast")


def _passthrough(chain, node, n_cols, dtype):
    """Whether ``node`` changes nothing for fastnn (an Identity, an inference
    Dropout, a Cast to the model's dtype, a Flatten or Reshape to (N, n_cols))."""
    op, attrs = node.op_type, _attrs(node)
    if op == "Identity":
        return True
    if op == "Dropout":
        return len(node.input) < 3 or not node.input[2]  # no training_mode input
    if op == "Cast":  # before the first layer: to either float type
        to = _NUMPY_TYPES.get(attrs.get("to"))
        return to is not None and (dtype is None or to == dtype)
    if op == "Flatten":
        return attrs.get("axis", 1) == 1
    if op == "Reshape":
        shape = chain.constant(node, 1)
        return shape is not None and list(shape) in ([-1, n_cols], [0, n_cols])
    return False


def _read_layers(proto):
    """The layers of a chain-of-dense-layers graph, without building anything."""
    chain = _Chain(proto.graph)
    layers = []  # [W, b, bn arrays or None, eps, activation]
    while True:
        if layers and layers[-1][4] == "sigmoid" and chain.binary_tail():
            break
        node = chain.next()
        if node is None:
            break
        op = node.op_type
        n_cols = layers[-1][0].shape[1] if layers else None
        dtype = layers[-1][0].dtype if layers else None
        if op in ("Gemm", "MatMul"):
            W, b = _dense(chain, node)
            if layers and W.shape[0] != n_cols:
                raise ValueError(
                    f"node {node.name!r} takes {W.shape[0]} inputs but the layer "
                    f"before gives {n_cols}"
                )
            if layers and layers[-1][4] is None:
                layers[-1][4] = "identity"
            layers.append([W, b, None, None, None])
        elif op == "BatchNormalization":
            if not layers or layers[-1][2] is not None or layers[-1][4] is not None:
                raise ValueError(
                    f"BatchNormalization node {node.name!r} does not come between a "
                    "dense layer's matmul and its activation, where fastnn has it"
                )
            layers[-1][2], layers[-1][3] = _batch_norm(chain, node, n_cols)
        elif op in _PASS and _passthrough(chain, node, n_cols, dtype):
            chain.advance(node)
        elif (act := _activation(chain, node, n_cols, dtype)) is not None:
            if not layers or layers[-1][4] is not None:
                raise ValueError(
                    f"{op} node {node.name!r} does not follow a dense layer (Gemm, "
                    "or MatMul + Add)"
                )
            layers[-1][4] = act
            chain.advance(node)
        else:
            raise ValueError(
                f"unsupported operator {op} (node {node.name!r}): fastnn reads "
                "chains of Gemm or MatMul + Add, BatchNormalization and the "
                "activations Sigmoid, Tanh, Relu, LeakyRelu, PRelu, Softmax"
            )
    if chain.seen != chain.n_nodes:
        raise ValueError(
            f"{chain.n_nodes - chain.seen} nodes are not on the path from the input "
            "to the output: the graph is not a chain of layers"
        )
    if not layers:
        raise ValueError("the graph has no dense layer (Gemm, or MatMul + Add)")
    if layers[-1][4] is None:
        layers[-1][4] = "identity"
    return layers


def _check_layers(layers):
    dtypes = {np.dtype(a.dtype) for layer in layers for a in layer[:2]}
    if len(dtypes) != 1 or next(iter(dtypes)) not in _ONNX_TYPES:
        raise ValueError(
            "the weights must all be float32 or all float64, got "
            f"{sorted(map(str, dtypes))}"
        )
    for i, (*_, act) in enumerate(layers[:-1]):
        if act == "softmax":
            raise ValueError(f"a softmax in hidden layer {i} is not supported")
    if layers[-1][2] is not None:
        raise ValueError("batch normalization in the output layer is not supported")
    eps = {layer[3] for layer in layers if layer[2] is not None}
    if len(eps) > 1:
        raise ValueError(
            f"the batch normalizations use different epsilons {sorted(eps)}; fastnn "
            "has one per model"
        )
    return next(iter(dtypes)), (eps.pop() if eps else 1e-5)


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
    proto = _load(source)
    layers = _read_layers(proto)
    dtype, eps = _check_layers(layers)
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
            n_out = W.shape[1]
            gamma, beta = model.norm_params(i)
            gamma[...], beta[...] = bn[0], bn[1]
            stats = model.layout[i][5]
            model.running_stats[stats : stats + n_out] = bn[2]
            model.running_stats[stats + n_out : stats + 2 * n_out] = bn[3]
    return model.eval()


# -- skl2onnx -----------------------------------------------------------------------


class _ContainerEmitter:
    """What :func:`_emit_network` writes, into a skl2onnx scope and container."""

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
    model_type = _ONNX_TYPES[np.dtype(net.dtype)]
    in_type = _input_float_type(operator)
    source = operator.inputs[0].full_name
    if operator.inputs[0].type.to_onnx_type().tensor_type.elem_type != model_type:
        cast = emit.name("cast_input")
        emit.node("Cast", [source], cast, to=model_type)
        source = cast
    out = emit.name("network_output")
    _emit_network(net, source, out, emit)
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
    float_type = _NUMPY_TYPES[_input_float_type(operator)]
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


register_skl2onnx()
