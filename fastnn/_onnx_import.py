"""How :func:`fastnn.onnx.from_onnx` reads a graph: checks that it is a chain of
dense layers and collects their arrays, building nothing."""

import os

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ._onnx_export import ACTIVATION_OPS, LEAKY_SLOPE, NUMPY_TYPES, ONNX_TYPES

_ACTIVATION_NAMES = {op: name for name, op in ACTIVATION_OPS.items()}


def load(source):
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
        and o.type.tensor_type.elem_type in NUMPY_TYPES
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
        to = NUMPY_TYPES.get(attrs.get("to"))
        return to is not None and (dtype is None or to == dtype)
    if op == "Flatten":
        return attrs.get("axis", 1) == 1
    if op == "Reshape":
        shape = chain.constant(node, 1)
        return shape is not None and list(shape) in ([-1, n_cols], [0, n_cols])
    return False


def read_layers(proto):
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


def check_layers(layers):
    dtypes = {np.dtype(a.dtype) for layer in layers for a in layer[:2]}
    if len(dtypes) != 1 or next(iter(dtypes)) not in ONNX_TYPES:
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
