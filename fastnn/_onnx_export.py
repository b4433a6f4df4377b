"""What :func:`fastnn.onnx.to_onnx` and the skl2onnx converters share: the nodes and
initializers of a model's forward pass, written through an "emitter" (a plain
graph's lists, or a skl2onnx container)."""

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from .kernels.layout import NORM, running_views

LEAKY_SLOPE = 0.01
ONNX_TYPES = {np.dtype(np.float32): TensorProto.FLOAT,
              np.dtype(np.float64): TensorProto.DOUBLE}  # fmt: skip
NUMPY_TYPES = {code: dtype for dtype, code in ONNX_TYPES.items()}
ACTIVATION_OPS = {"sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "Relu",
                  "softmax": "Softmax"}  # fmt: skip


def _layers(model):
    """Per layer, ``(W, b, norm, activation name)``, ``norm`` being ``None`` or
    ``(gamma, beta, running mean, running var)``, all arrays of the model's dtype."""
    names = list(model.hidden) + [model.output]
    layers = []
    for layer, norm in enumerate(model.layout[:, NORM]):
        bn = None
        if norm:
            gamma, beta = model.norm_params(layer)
            bn = (gamma, beta, *running_views(model.running_stats, model.layout, layer))
        layers.append((model.weights[layer], model.biases[layer], bn, names[layer]))
    return layers


def emit_network(model, source, target, emit):
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
            steps.append((ACTIVATION_OPS[act], [], {}))
    current = source
    for k, (op, extra, attrs) in enumerate(steps):
        out = target if k == len(steps) - 1 else emit.name(op.lower())
        emit.node(op, [current, *extra], out, **attrs)
        current = out


class ProtoEmitter:
    """Collects what :func:`emit_network` writes into lists, for a plain graph."""

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
