"""FLOP counting from a profiled ONNX Runtime run, on small graphs with hand-computed counts."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from daemon.perf.flops import count_flops, node_flops


def _model(nodes, inputs, outputs, inits) -> bytes:
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=[
        numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def _f(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def test_conv_deconv_gemm_matmul_counts():
    rng = np.random.default_rng(0)
    inits = {
        "w1": rng.standard_normal((8, 2, 3, 3)),   # grouped conv: 4 in / 2 groups
        "w2": rng.standard_normal((8, 4, 2, 2)),   # ConvTranspose 8 -> 4, stride 2
        "wg": rng.standard_normal((5, 4 * 10 * 12)),  # Gemm, transB
        "bg": np.zeros(5), "wm": rng.standard_normal((5, 7)),
    }
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1], strides=[2, 2],
                         group=2, name="backbone/conv1_node"),
        helper.make_node("ConvTranspose", ["c1", "w2"], ["d"], strides=[2, 2], name="head/deconv"),
        helper.make_node("Flatten", ["d"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "wg", "bg"], ["g"], transB=1, name="head/fc"),
        helper.make_node("MatMul", ["g", "wm"], ["y"], name="head/mm"),
    ]
    model = _model(nodes, [_f("x", [3, 4, 10, 12])], [_f("y", ["a", "b"])], inits)
    report = count_flops(model, {"x": np.zeros((3, 4, 10, 12), np.float32)})
    conv = 2 * (3 * 8 * 5 * 6) * (2 * 3 * 3)      # out elements x (Cin/groups x k x k)
    deconv = 2 * (3 * 8 * 5 * 6) * (4 * 2 * 2)    # in elements x (Cout x k x k)
    gemm = 2 * (3 * 5) * (4 * 10 * 12)
    matmul = 2 * (3 * 7) * 5
    assert report.by_op() == {"Conv": conv, "ConvTranspose": deconv, "Gemm": gemm,
                              "MatMul": matmul}
    assert report.total == conv + deconv + gemm + matmul
    assert report.by_scope(1) == {"backbone": conv, "head": deconv + gemm + matmul}
    assert [n.name for n in report.nodes] == ["backbone/conv1", "head/deconv", "head/fc",
                                              "head/mm"]


def test_data_dependent_rows_are_counted_as_run():
    """Rows selected at run time (like RoIs after NMS) are counted with their real number."""
    inits = {"w": np.ones((6, 16)), "b": np.zeros(6), "thr": np.asarray(0.5)}
    nodes = [
        helper.make_node("ReduceMax", ["x"], ["m"], axes=[1], keepdims=0),
        helper.make_node("Greater", ["m", "thr"], ["keep"]),
        helper.make_node("NonZero", ["keep"], ["nz"]),
        helper.make_node("Squeeze", ["nz"], ["idx"], ),
        helper.make_node("Gather", ["x", "idx"], ["rows"], axis=0),
        helper.make_node("Gemm", ["rows", "w", "b"], ["y"], transB=1, name="fc"),
    ]
    model = _model(nodes, [_f("x", ["n", 16])], [_f("y", ["a", "b"])], inits)
    x = np.zeros((10, 16), np.float32)
    x[[1, 4, 7], 0] = 1.0  # three rows pass the threshold
    report = count_flops(model, {"x": x})
    assert report.total == 2 * 3 * 6 * 16
    assert report.nodes[0].output_shape == (3, 6)


@pytest.mark.parametrize("op, inputs, output, expected", [
    ("Conv", [(1, 3, 8, 8), (16, 3, 7, 7)], (1, 16, 4, 4), 2 * 16 * 16 * 3 * 49),
    ("Gemm", [(100, 256)], (100, 10), 2 * 100 * 10 * 256),  # pre-packed weight absent
    ("MatMul", [(2, 5, 3), (3, 4)], (2, 5, 4), 2 * 40 * 3),
])
def test_node_flops_formulas(op, inputs, output, expected):
    assert node_flops(op, inputs, output) == expected


def test_unknown_op_is_an_error():
    with pytest.raises(ValueError, match="Relu"):
        node_flops("Relu", [(1,)], (1,))


def test_profiling_writes_nothing_in_the_working_directory(tmp_path, monkeypatch):
    """The profiler's JSON dump goes to a temporary folder that is removed afterwards (two
    ``onnxruntime_profile__*.json`` dumps once ended up committed at the repository root)."""
    monkeypatch.chdir(tmp_path)
    model = _model([helper.make_node("Relu", ["x"], ["y"])], [_f("x", [1, 4])],
                   [_f("y", [1, 4])], {})
    count_flops(model, {"x": np.zeros((1, 4), np.float32)})
    assert list(tmp_path.iterdir()) == []
