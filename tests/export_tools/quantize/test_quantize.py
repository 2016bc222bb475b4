"""Static int8 quantisation of exported fixture models with real calibration images."""

from __future__ import annotations

import shutil

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from daemon.cli.main import main
from daemon.inference.predictor import Predictor
from export_tools.quantize import (
    FLOAT_LAYERS,
    QuantizationError,
    QuantizeOptions,
    float_node_names,
    quantize_model,
)

DEMO = "mask_rcnn_R_50_FPN_demo"


@pytest.fixture(scope="module")
def demo_int8(exported, fixtures, tmp_path_factory):
    out = tmp_path_factory.mktemp("int8") / "demo_int8.onnx"
    return quantize_model(exported(DEMO), out, fixtures / DEMO, QuantizeOptions(max_images=4))


def _weight_producers(model: onnx.ModelProto) -> dict[str, str]:
    """Quantisable node name -> op type of whatever produces its weight input."""
    producers = {o: n.op_type for n in model.graph.node for o in n.output}
    inits = {t.name for t in model.graph.initializer}
    return {n.name: ("initializer" if n.input[1] in inits else producers.get(n.input[1], "?"))
            for n in model.graph.node if n.op_type in ("Conv", "Gemm")}


def test_heavy_layers_int8_head_outputs_float(demo_int8, exported):
    model = onnx.load(str(demo_int8))
    producers = _weight_producers(model)
    kept_float = float_node_names(onnx.load(str(exported(DEMO))))
    assert kept_float and all(any(f in n for f in FLOAT_LAYERS) for n in kept_float)
    for name, producer in producers.items():
        expected = "initializer" if name in kept_float else "DequantizeLinear"
        assert producer == expected, f"{name}: weight from {producer}, expected {expected}"
    assert sum(p == "DequantizeLinear" for p in producers.values()) > 50
    ops = {n.op_type for n in model.graph.node}
    assert {"RoiAlign", "NonMaxSuppression", "TopK"} <= ops  # selection logic untouched


def test_weights_are_per_channel_int8(demo_int8):
    model = onnx.load(str(demo_int8))
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    conv = next(n for n in model.graph.node if n.name == "backbone/res4/conv2_node")
    dq = next(n for n in model.graph.node if n.output[0] == conv.input[1])
    weight, scale = inits[dq.input[0]], inits[dq.input[1]]
    assert weight.dtype == np.int8
    assert scale.shape == (weight.shape[0],)  # one scale per output channel


def test_metadata_records_quantisation(demo_int8, exported):
    meta, fp32 = Predictor(demo_int8).metadata, Predictor(exported(DEMO)).metadata
    q = meta.quantization
    assert q["precision"] == "int8" and q["calibration_images"] == 4 and q["per_channel"]
    assert q["int8_format"] == "u8s8"
    assert fp32.quantization == {}
    assert {**meta.__dict__, "quantization": {}} == fp32.__dict__


def test_int8_detections_agree_with_fp32(demo_int8, exported, fixtures):
    """The confident detections of the trained demo model survive quantisation."""
    _assert_confident_detections_kept(Predictor(exported(DEMO)), Predictor(demo_int8), fixtures)


def _assert_confident_detections_kept(fp32: Predictor, int8: Predictor, fixtures) -> None:
    import cv2

    for i in range(5):
        image = cv2.imread(str(fixtures / DEMO / f"image_{i}.png"))
        a, b = fp32(image), int8(image)
        strong = a.scores > 0.9
        for box, cls in zip(a.pred_boxes[strong], a.pred_classes[strong]):
            same = b.pred_boxes[b.pred_classes == cls]
            assert len(same), f"image {i}: class {cls} lost"
            assert _iou(box, same).max() > 0.8, f"image {i}: box {box} not found in int8"


def test_s8s8_quantises_activations_signed(exported, fixtures, tmp_path):
    """``--int8-format s8s8``: every activation QuantizeLinear has an int8 zero point (u8s8: uint8),
    the metadata says so, and the confident detections survive."""
    options = QuantizeOptions(max_images=4, int8_format="s8s8")
    path = quantize_model(exported(DEMO), tmp_path / "s8s8.onnx", fixtures / DEMO, options)
    model = onnx.load(str(path))
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    zero_points = [inits[n.input[2]] for n in model.graph.node
                   if n.op_type == "QuantizeLinear" and n.input[2] in inits]
    assert zero_points and all(z.dtype == np.int8 for z in zero_points)
    pred = Predictor(path)
    assert pred.metadata.quantization["int8_format"] == "s8s8"
    _assert_confident_detections_kept(Predictor(exported(DEMO)), pred, fixtures)


def test_unknown_int8_format_is_refused(exported, fixtures, tmp_path):
    with pytest.raises(QuantizationError, match="int8 format 'u4s4'"):
        quantize_model(exported(DEMO), tmp_path / "q.onnx", fixtures / DEMO,
                       QuantizeOptions(int8_format="u4s4"))


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    lt = np.maximum(box[:2], boxes[:, :2])
    rb = np.minimum(box[2:], boxes[:, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=1)
    area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
    return inter / (area(box) + area(boxes) - inter)


def test_calibration_folder_errors(exported, tmp_path):
    model = exported("faster_rcnn_R_50_FPN")
    with pytest.raises(QuantizationError, match="not a folder"):
        quantize_model(model, tmp_path / "q.onnx", tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(QuantizationError, match="no images"):
        quantize_model(model, tmp_path / "q.onnx", tmp_path / "empty")
    with pytest.raises(QuantizationError, match="calibration method"):
        quantize_model(model, tmp_path / "q.onnx", tmp_path / "empty",
                       QuantizeOptions(method="magic"))


def test_cli_export_int8(fixtures, tmp_path):
    name = "faster_rcnn_R_50_FPN"
    calib = tmp_path / "calib"
    calib.mkdir()
    for i in range(2):
        shutil.copy(fixtures / name / f"image_{i}.png", calib)
    out = tmp_path / "model_int8.onnx"
    args = ["export", "--config-file", str(fixtures / name / "config.yaml"),
            "--weights", str(fixtures / name / "model_final.pth"), "-o", str(out)]
    assert main([*args, "--int8"]) == 2  # needs --calibration
    assert not out.exists()
    assert main([*args, "--int8", "--calibration", str(calib)]) == 0
    meta = Predictor(out).metadata
    assert meta.quantization["calibration_images"] == 2
    assert any(n.op_type == "QuantizeLinear" for n in onnx.load(str(out)).graph.node)
