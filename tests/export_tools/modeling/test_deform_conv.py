"""Deformable convolution from standard ops against torchvision's ``deform_conv2d`` (the op
Detectron2's ``DeformConv`` runs on CPU): data from ``make_deform_data.py``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto

from export_tools.graph import GraphBuilder
from export_tools.modeling.deform_conv import DeformSpec, deform_conv
from tests.export_tools.modeling.make_deform_data import CASES

DATA = np.load(Path(__file__).resolve().parent / "deform_conv_expected.npz")


def _model(name: str) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    c, o, _, _, s, dil, groups, dg, modulated = CASES[name]
    g = GraphBuilder(name)
    feeds = {"x": DATA[f"{name}/x"], "offset": DATA[f"{name}/offset"]}
    if modulated:
        feeds["mask"] = DATA[f"{name}/mask"]
    inputs = {k: g.add_input(k, TensorProto.FLOAT, [1, v.shape[1], "h", "w"])
              for k, v in feeds.items()}
    y = deform_conv(g, inputs["x"], inputs["offset"], inputs.get("mask"), DATA[f"{name}/weight"],
                    DeformSpec(c, o, s, dil, dil, groups, dg, modulated))
    g.add_output(y, "y", TensorProto.FLOAT, [1, o, "ho", "wo"])
    model = g.build()
    onnx.checker.check_model(model, full_check=True)
    return model, feeds


@pytest.mark.parametrize("name", list(CASES))
def test_matches_torchvision_on_onnxruntime(name: str) -> None:
    import onnxruntime as ort

    model, feeds = _model(name)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    y = session.run(None, feeds)[0]
    np.testing.assert_allclose(y, DATA[f"{name}/y"], rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("name", list(CASES))
def test_matches_torchvision_on_openvino(name: str) -> None:
    ov = pytest.importorskip("openvino")
    model, feeds = _model(name)
    core = ov.Core()  # f32, as the openvino backend runs (the default may be bf16)
    compiled = core.compile_model(core.read_model(model.SerializeToString(), b""), "CPU",
                                  {"INFERENCE_PRECISION_HINT": "f32"})
    y = compiled(feeds)[compiled.output(0)]
    np.testing.assert_allclose(y, DATA[f"{name}/y"], rtol=1e-5, atol=1e-4)


def test_samples_fall_outside_the_input() -> None:
    """The data exercises zero padding: some sampling positions lie beyond the border."""
    off = DATA["plain/offset"]
    assert np.abs(off).max() > 3.0
