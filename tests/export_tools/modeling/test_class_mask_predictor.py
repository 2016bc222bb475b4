"""The class-specific mask predictor computed for each detection's own class only equals the
full 1x1 convolution followed by picking that class's channel, for any number of detections
(none included), in a real ONNX Runtime session."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from export_tools.graph.builder import GraphBuilder
from export_tools.modeling.roi_heads.mask_head import class_mask_probs
from export_tools.modeling.weights import WeightStore

CH, K, M = 8, 5, 28
PREFIX = "roi_heads.mask_head.predictor"


@pytest.fixture(scope="module")
def weights() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(2)
    return {f"{PREFIX}.weight": rng.normal(0, 0.3, (K, CH, 1, 1)).astype(np.float32),
            f"{PREFIX}.bias": rng.normal(0, 0.3, (K,)).astype(np.float32)}


def _session(state: dict[str, np.ndarray]) -> ort.InferenceSession:
    g = GraphBuilder("mask_predictor")
    x = g.add_input("x", onnx.TensorProto.FLOAT, ["D", CH, M, M])
    classes = g.add_input("classes", onnx.TensorProto.INT64, ["D"])
    probs = class_mask_probs(g, WeightStore(state), x, classes, PREFIX, CH, K)
    g.add_output(probs, "probs", onnx.TensorProto.FLOAT, ["D", M, M])
    return ort.InferenceSession(g.build().SerializeToString(), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("count", [0, 1, 7])
def test_equals_the_convolution_then_the_class_channel(weights, count: int) -> None:
    rng = np.random.default_rng(count)
    x = rng.normal(0, 1, (count, CH, M, M)).astype(np.float32)
    classes = rng.integers(0, K, count).astype(np.int64)
    (probs,) = _session(weights).run(None, {"x": x, "classes": classes})
    assert probs.shape == (count, M, M)
    w, b = weights[f"{PREFIX}.weight"][:, :, 0, 0], weights[f"{PREFIX}.bias"]
    logits = np.einsum("kc,dchw->dkhw", w, x) + b[None, :, None, None]  # (D, K, M, M)
    expected = 1 / (1 + np.exp(-logits[np.arange(count), classes]))
    np.testing.assert_allclose(probs, expected, atol=1e-6)
