"""GroupNorm as exported: Detectron2's values, and an empty batch (a GN head given no RoIs)."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from export_tools.graph.builder import GraphBuilder
from export_tools.modeling.layers import GN_EPS, group_norm
from export_tools.modeling.weights import WeightStore

CH, GROUPS = 8, 4


def _session(state: dict[str, np.ndarray]) -> ort.InferenceSession:
    g = GraphBuilder("gn")
    x = g.add_input("x", onnx.TensorProto.FLOAT, ["N", CH, "H", "W"])
    g.add_output(group_norm(g, WeightStore(state), x, "norm", CH, GROUPS), "y",
                 onnx.TensorProto.FLOAT, ["N", CH, "H", "W"])
    return ort.InferenceSession(g.build().SerializeToString(), providers=["CPUExecutionProvider"])


def _reference(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray) -> np.ndarray:
    n, c, h, w = x.shape
    grouped = x.reshape(n, GROUPS, -1).astype(np.float64)
    normed = (grouped - grouped.mean(-1, keepdims=True)) / np.sqrt(
        grouped.var(-1, keepdims=True) + GN_EPS)
    return normed.reshape(n, c, h, w) * gamma[:, None, None] + beta[:, None, None]


@pytest.fixture(scope="module")
def weights() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"norm.weight": rng.uniform(0.5, 2, CH).astype(np.float32),
            "norm.bias": rng.normal(size=CH).astype(np.float32)}


@pytest.mark.parametrize("shape", [(2, CH, 7, 7), (1, CH, 5, 9)])
def test_values_equal_torch_group_norm_formula(weights, shape) -> None:
    x = np.random.default_rng(1).normal(size=shape).astype(np.float32)
    (y,) = _session(weights).run(None, {"x": x})
    np.testing.assert_allclose(y, _reference(x, weights["norm.weight"], weights["norm.bias"]),
                               rtol=1e-4, atol=1e-4)


def test_an_empty_batch_gives_an_empty_output(weights) -> None:
    """A -1 in the grouping Reshape cannot be inferred from zero elements (ONNX Runtime fails):
    the exported Reshape has every size explicit."""
    (y,) = _session(weights).run(None, {"x": np.zeros((0, CH, 7, 7), np.float32)})
    assert y.shape == (0, CH, 7, 7)
