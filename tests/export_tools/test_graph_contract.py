"""The exported graph's contract: standard ONNX ops only, dynamic H and W, self-description."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from daemon.inference.predictor import Predictor
from export_tools.graph.builder import IR_VERSION, OPSET

MODELS = ("faster_rcnn_R_50_FPN", "retinanet_R_50_FPN", "mask_rcnn_R_50_C4")


@pytest.mark.parametrize("model", MODELS)
def test_graph_uses_only_standard_domain_ops(model: str, export_fixture_model) -> None:
    proto = onnx.load(str(export_fixture_model(model)))
    onnx.checker.check_model(proto, full_check=True)
    assert {op.domain for op in proto.opset_import} == {""}
    assert [(op.domain, op.version) for op in proto.opset_import] == [("", OPSET)]
    assert proto.ir_version == IR_VERSION
    assert all(node.domain == "" for node in proto.graph.node)
    assert not proto.functions


@pytest.mark.parametrize("model", MODELS)
def test_input_height_and_width_are_dynamic(model: str, export_fixture_model) -> None:
    path = export_fixture_model(model)
    (inp,) = onnx.load(str(path)).graph.input
    dims = inp.type.tensor_type.shape.dim
    assert dims[0].dim_value == 1 and dims[1].dim_value == 3
    assert dims[2].dim_param and dims[3].dim_param and not dims[2].dim_value
    pred = Predictor(path)
    rng = np.random.default_rng(0)
    for h, w in [(64, 64), (97, 131), (320, 96), (33, 500)]:
        x = rng.uniform(0, 255, (1, 3, h, w)).astype(np.float32)
        raw = pred.run_network(x)
        assert raw["boxes"].shape[1:] == (4,)
        assert len(raw["boxes"]) == len(raw["scores"]) == len(raw["classes"])
        if len(raw["boxes"]):
            assert raw["boxes"][:, 2].max() <= w + 1e-3 or model.startswith("retinanet")


def test_metadata_describes_the_model(export_fixture_model) -> None:
    pred = Predictor(export_fixture_model("faster_rcnn_X_FPN_gn_rgb"))
    meta = pred.metadata
    assert meta.class_names == ["square", "circle", "triangle"]
    assert meta.input_format == "RGB"
    assert (meta.min_size_test, meta.max_size_test) == (256, 400)
    assert meta.outputs[:3] == ["boxes", "scores", "classes"]
    assert meta.exporter_version
