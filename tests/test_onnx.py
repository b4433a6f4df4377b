"""fastnn.onnx: export checked against onnxruntime, import from fastnn and torch,
refusals of what is not a chain of dense layers (the skl2onnx converters are in
test_onnx_skl2onnx.py)."""

import itertools

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import fastnn  # noqa: E402
import fastnn.onnx as fonnx  # noqa: E402
from fastnn.onnx import from_onnx, to_onnx  # noqa: E402

from _onnx_helpers import (  # noqa: E402
    HIDDEN,
    OUTPUT,
    STANDARD_OPS,
    assert_matches,
    assert_matches_predict,
    data,
    make_model,
    run_ort,
)

# -- export -------------------------------------------------------------------------


@pytest.mark.parametrize("batch_norm", [False, True], ids=["plain", "bn"])
@pytest.mark.parametrize("output", OUTPUT)
@pytest.mark.parametrize("hidden", HIDDEN)
def test_export_matches_predict(hidden, output, batch_norm, dtype):
    model = make_model([6, 9, 4], hidden, output, dtype, batch_norm=batch_norm)
    assert_matches_predict(model, to_onnx(model))


@pytest.mark.parametrize("dropout", [0.0, 0.4], ids=["no_dropout", "dropout"])
@pytest.mark.parametrize("batch_norm", [False, True], ids=["plain", "bn"])
@pytest.mark.parametrize("depth", [1, 2, 3])
def test_export_depth_dropout_batch_norm(depth, batch_norm, dropout, dtype):
    sizes = [5, 8, 7, 6][: depth + 1] + [3]
    hidden = list(itertools.islice(itertools.cycle(HIDDEN[1:4]), depth))
    model = make_model(sizes, hidden, "softmax", dtype, batch_norm, dropout)
    proto = to_onnx(model)
    assert_matches_predict(model, proto)
    ops = [n.op_type for n in proto.graph.node]
    assert ops.count("Gemm") == depth + 1
    assert ops.count("BatchNormalization") == (depth if batch_norm else 0)


@pytest.mark.parametrize("sizes", [[1, 1], [3, 1], [1, 5, 2]], ids=str)
def test_export_edge_shapes_and_one_row(sizes, dtype):
    model = make_model(sizes, "tanh", "identity", dtype)
    proto = to_onnx(model)
    for X in (data(model, n=1), data(model, n=4)):
        assert_matches(run_ort(proto, X), model.predict(X))
    back = from_onnx(proto)
    assert back.sizes == sizes and np.array_equal(back.params, model.params)


def test_export_after_training_with_batch_norm(dtype):
    model = fastnn.MLP([4, 8, 3], hidden="relu", loss="cross_entropy", dtype=dtype,
                       batch_norm=True, dropout=0.2, seed=1)  # fmt: skip
    X = data(model, 40)
    model.fit(X, np.arange(40) % 3, epochs=3, batch_size=8, verbose=0)
    assert_matches_predict(model, to_onnx(model))


def test_graph_types_names_and_metadata(dtype):
    model = make_model([3, 4, 2], "leaky_relu", "sigmoid", dtype, batch_norm=True)
    proto = to_onnx(model)
    onnx.checker.check_model(proto, full_check=True)
    elem = TensorProto.FLOAT if dtype == np.float32 else TensorProto.DOUBLE
    (inp,), (out,) = proto.graph.input, proto.graph.output
    for value, width in ((inp, 3), (out, 2)):
        assert value.type.tensor_type.elem_type == elem
        batch, cols = value.type.tensor_type.shape.dim
        assert batch.dim_param and not batch.HasField("dim_value")
        assert cols.dim_value == width
    assert {n.op_type for n in proto.graph.node} <= STANDARD_OPS
    assert {n.domain for n in proto.graph.node} == {""}
    # float64's leaky relu is PRelu: LeakyRelu's alpha is a float32 attribute
    leaky = "LeakyRelu" if dtype == np.float32 else "PRelu"
    assert leaky in {n.op_type for n in proto.graph.node}
    assert proto.producer_name == "fastnn"
    assert proto.producer_version == fastnn.__version__
    props = {p.key: p.value for p in proto.metadata_props}
    assert props["fastnn_version"] == fastnn.__version__
    assert props["loss"] == "mse"
    assert proto.opset_import[0].version == fonnx.DEFAULT_OPSET


def test_export_writes_path_and_opset(tmp_path):
    model = make_model([3, 4, 2], "tanh", "softmax", np.float32)
    path = tmp_path / "model.onnx"
    proto = to_onnx(model, path, opset=fonnx.MIN_OPSET)
    assert proto.opset_import[0].version == fonnx.MIN_OPSET
    assert onnx.load(str(path)) == proto
    assert_matches_predict(model, proto)
    for bad, err in ((12, ValueError), (10**4, ValueError), (13.0, TypeError)):
        with pytest.raises(err, match="opset"):
            to_onnx(model, opset=bad)


def test_export_refuses_other_objects():
    with pytest.raises(TypeError, match="fastnn.MLP"):
        to_onnx("model")


# -- import -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "hidden, output, batch_norm",
    [
        (["relu"], "softmax", False),
        (["leaky_relu", "tanh"], "sigmoid", [True, False]),
        (["identity", "sigmoid", "leaky_relu"], "identity", True),
        (["tanh"], "leaky_relu", True),
    ],
)
def test_round_trip_is_exact(hidden, output, batch_norm, dtype, tmp_path):
    sizes = [4] + [5] * len(hidden) + [3]
    model = make_model(sizes, hidden, output, dtype, batch_norm=batch_norm)
    to_onnx(model, tmp_path / "m.onnx")
    back = from_onnx(tmp_path / "m.onnx")
    assert back.sizes == model.sizes and back.dtype == model.dtype
    assert (back.hidden, back.output) == (model.hidden, model.output)
    assert back.batch_norm == model.batch_norm and back.bn_eps == model.bn_eps
    assert back.loss_name == model.loss_name
    assert np.array_equal(back.params, model.params)
    assert np.array_equal(back.running_stats, model.running_stats)
    X = data(model)
    assert np.array_equal(back.predict(X), model.predict(X))
    assert not back.training


def test_import_from_bytes_and_proto_and_options():
    model = make_model([3, 4, 2], "relu", "softmax", np.float64)
    proto = to_onnx(model)
    for source in (proto, proto.SerializeToString()):
        back = from_onnx(source, optimizer=fastnn.SGD(0.1), seed=5)
        assert np.array_equal(back.params, model.params)
        assert isinstance(back.optimizer, fastnn.SGD)
    assert from_onnx(proto).loss_name == "mse"  # recorded by fastnn's export


def _graph(nodes, initializers, inputs=None, outputs=None, elem=TensorProto.FLOAT):
    inputs = inputs or [helper.make_tensor_value_info("x", elem, ["N", 3])]
    outputs = outputs or [helper.make_tensor_value_info("y", elem, ["N", 2])]
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=initializers)
    opsets = [helper.make_opsetid("", 17)]  # the oldest IR for it: older runtimes
    ir = helper.find_min_ir_version_for(opsets)
    return helper.make_model(graph, opset_imports=opsets, ir_version=ir)


def _init(name, shape, dtype=np.float32):
    value = np.random.default_rng(len(name)).normal(size=shape).astype(dtype)
    return numpy_helper.from_array(value, name)


def test_import_matmul_add_and_passthroughs():
    W, b = _init("W", (3, 4)), _init("b", (1, 4))
    V, c = _init("V", (4, 2)), _init("c", (2,))
    nodes = [
        helper.make_node("Cast", ["x"], ["x32"], to=TensorProto.FLOAT),
        helper.make_node("MatMul", ["x32", "W"], ["h"]),
        helper.make_node("Add", ["b", "h"], ["hb"]),  # bias first: also an Add
        helper.make_node("LeakyRelu", ["hb"], ["a"], alpha=0.01),
        helper.make_node("Identity", ["a"], ["a2"]),
        helper.make_node("Gemm", ["a2", "V", "c"], ["z"], transB=0),
        helper.make_node("Softmax", ["z"], ["y"], axis=-1),
    ]
    proto = _graph(nodes, [W, b, V, c])
    model = from_onnx(proto)
    assert model.sizes == [3, 4, 2]
    assert (model.hidden, model.output, model.loss_name) == (
        ["leaky_relu"],
        "softmax",
        "cross_entropy",
    )
    X = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    np.testing.assert_allclose(model.predict(X), run_ort(proto, X), rtol=1e-5)


def test_import_gemm_trans_b_and_no_activation():
    W, b = _init("W", (2, 3)), _init("b", (2,))
    nodes = [helper.make_node("Gemm", ["x", "W", "b"], ["y"], transB=1)]
    model = from_onnx(_graph(nodes, [W, b]))
    assert (model.sizes, model.output, model.loss_name) == ([3, 2], "identity", "mse")
    assert np.array_equal(model.weights[0], numpy_helper.to_array(W).T)


def _refused(proto, match, monkeypatch):
    """from_onnx refuses ``proto`` with a ValueError matching ``match`` and builds no
    model on the way."""
    built = []
    monkeypatch.setattr(fonnx, "MLP", lambda *a, **k: built.append(1))
    with pytest.raises(ValueError, match=match):
        from_onnx(proto)
    assert not built


def test_import_refuses_unsupported_operator(monkeypatch):
    W, b = _init("W", (3, 2)), _init("b", (2,))
    nodes = [
        helper.make_node("Gemm", ["x", "W", "b"], ["z"]),
        helper.make_node("Tanh", ["z"], ["t"]),
        helper.make_node("Abs", ["t"], ["y"]),
    ]
    _refused(_graph(nodes, [W, b]), "unsupported operator Abs", monkeypatch)


def test_import_refuses_branches(monkeypatch):
    W, b = _init("W", (3, 2)), _init("b", (2,))
    nodes = [
        helper.make_node("Gemm", ["x", "W", "b"], ["z"]),
        helper.make_node("Tanh", ["z"], ["t"]),
        helper.make_node("Sigmoid", ["z"], ["s"]),
        helper.make_node("Add", ["t", "s"], ["y"]),
    ]
    _refused(_graph(nodes, [W, b]), "branches", monkeypatch)


def test_import_refuses_missing_initializer(monkeypatch):
    b = _init("b", (2,))
    nodes = [helper.make_node("Gemm", ["x", "W", "b"], ["y"])]
    W_input = helper.make_tensor_value_info("W", TensorProto.FLOAT, [3, 2])
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])
    _refused(_graph(nodes, [b], inputs=[x, W_input]), "one input", monkeypatch)
    _refused(_graph(nodes, [b]), "not a valid ONNX model", monkeypatch)


def test_import_refuses_what_fastnn_cannot_hold(monkeypatch):
    W, b = _init("W", (3, 2)), _init("b", (2,))
    leaky = [
        helper.make_node("Gemm", ["x", "W", "b"], ["z"]),
        helper.make_node("LeakyRelu", ["z"], ["y"], alpha=0.2),
    ]
    _refused(_graph(leaky, [W, b]), "alpha", monkeypatch)
    twice = [
        helper.make_node("Gemm", ["x", "W", "b"], ["z"]),
        helper.make_node("Tanh", ["z"], ["t"]),
        helper.make_node("Tanh", ["t"], ["y"]),
    ]
    _refused(_graph(twice, [W, b]), "does not follow a dense layer", monkeypatch)
    bn = [_init(k, (2,)) for k in ("g", "be", "m")] + [
        numpy_helper.from_array(np.ones(2, np.float32), "v")
    ]
    late_bn = [
        helper.make_node("Gemm", ["x", "W", "b"], ["z"]),
        helper.make_node("Relu", ["z"], ["r"]),
        helper.make_node("BatchNormalization", ["r", "g", "be", "m", "v"], ["y"]),
    ]
    _refused(_graph(late_bn, [W, b, *bn]), "between", monkeypatch)
    V, c = _init("V", (2, 2), np.float64), _init("c", (2,), np.float64)
    mixed = [
        helper.make_node("Gemm", ["x", "W", "b"], ["z"]),
        helper.make_node("Cast", ["z"], ["z64"], to=TensorProto.DOUBLE),
        helper.make_node("Gemm", ["z64", "V", "c"], ["y"]),
    ]
    out = [helper.make_tensor_value_info("y", TensorProto.DOUBLE, ["N", 2])]
    _refused(_graph(mixed, [W, b, V, c], outputs=out), "Cast", monkeypatch)
    _refused(_graph([], []), "not a valid ONNX model|no dense layer", monkeypatch)


def test_import_refuses_files_that_are_not_onnx(tmp_path, monkeypatch):
    path = tmp_path / "notes.onnx"
    path.write_text("this is not a model\n" * 10)
    _refused(str(path), "not", monkeypatch)
    _refused(b"\x00\x01garbage", "not", monkeypatch)
    with pytest.raises(FileNotFoundError):
        from_onnx(tmp_path / "missing.onnx")
    with pytest.raises(TypeError):
        from_onnx(42)


# -- torch -------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the TorchScript exporter
def test_import_from_torch(tmp_path):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    nn = torch.nn
    for dtype, act, last in (
        (torch.float32, nn.ReLU(), nn.Softmax(dim=1)),
        (torch.float64, nn.LeakyReLU(0.01), nn.Sigmoid()),
        (torch.float32, nn.Tanh(), nn.Identity()),
    ):
        net = nn.Sequential(nn.Linear(5, 8), act, nn.Dropout(0.3), nn.Linear(8, 6),
                            nn.Sigmoid(), nn.Linear(6, 3), last)  # fmt: skip
        net = net.to(dtype).eval()
        x = torch.randn(4, 5, dtype=dtype)
        path = tmp_path / "torch.onnx"
        torch.onnx.export(net, (x,), str(path), dynamo=False, input_names=["x"],
                          dynamic_axes={"x": {0: "N"}})  # fmt: skip
        model = from_onnx(path)
        assert model.sizes == [5, 8, 6, 3]
        assert model.dtype == (np.float32 if dtype == torch.float32 else np.float64)
        X = torch.randn(7, 5, dtype=dtype)
        with torch.no_grad():
            want = net(X).numpy()
        tol = {"rtol": 1e-5, "atol": 1e-6} if dtype == torch.float32 else {
            "rtol": 1e-10, "atol": 1e-14}  # fmt: skip
        np.testing.assert_allclose(model.predict(X.numpy()), want, **tol)
