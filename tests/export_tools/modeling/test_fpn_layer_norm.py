"""An FPN with ``norm="LN"`` (ViTDet's MViTv2 cascades): Detectron2's channels-first LayerNorm after
every lateral and output conv, checked in ONNX Runtime against numpy."""

from __future__ import annotations

import copy

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from export_tools.config import Config
from export_tools.config.defaults import DEFAULTS
from export_tools.graph.builder import GraphBuilder
from export_tools.modeling.backbone.base import Feature
from export_tools.modeling.backbone.fpn import build_fpn, fpn_problems
from export_tools.modeling.backbone.resnet import resnet_problems
from export_tools.modeling.layers import LN_EPS
from export_tools.modeling.weights import WeightStore

IN = {"res4": (8, 16), "res5": (12, 32)}  # channels, stride
OUT = 6


@pytest.fixture(scope="module")
def state() -> dict[str, np.ndarray]:
    """Detectron2's FPN keys with a norm: no conv bias (``use_bias = norm == ""``)."""
    rng = np.random.default_rng(0)
    out: dict[str, np.ndarray] = {}
    for ch, stride in IN.values():
        lvl = int(np.log2(stride))
        for name, shape in ((f"fpn_lateral{lvl}", (OUT, ch, 1, 1)),
                            (f"fpn_output{lvl}", (OUT, OUT, 3, 3))):
            prefix = f"backbone.{name}"
            out[f"{prefix}.weight"] = rng.normal(0, 0.3, shape).astype(np.float32)
            out[f"{prefix}.norm.weight"] = rng.uniform(0.5, 2, OUT).astype(np.float32)
            out[f"{prefix}.norm.bias"] = rng.normal(size=OUT).astype(np.float32)
    return out


def _session(state: dict[str, np.ndarray]) -> ort.InferenceSession:
    g = GraphBuilder("fpn_ln")
    feats = {}
    for name, (ch, stride) in IN.items():
        x = g.add_input(name, onnx.TensorProto.FLOAT, [1, ch, f"h_{name}", f"w_{name}"])
        feats[name] = Feature(x, ch, stride)
    w = WeightStore(state)
    out = build_fpn(g, w, feats, list(IN), OUT, "LN", "sum", None)
    w.finish()  # every key read: the norms are at backbone.fpn_{lateral,output}{lvl}.norm
    for name in ("p4", "p5"):
        g.add_output(out[name].tensor, name, onnx.TensorProto.FLOAT, [1, OUT, "h", "w"])
    return ort.InferenceSession(g.build().SerializeToString(), providers=["CPUExecutionProvider"])


def _conv(x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Stride-1 convolution, padding k // 2 (float64)."""
    k = weight.shape[-1]
    pad = np.pad(x, ((0, 0), (0, 0), (k // 2, k // 2), (k // 2, k // 2)))
    h, w = x.shape[2:]
    out = np.zeros((x.shape[0], weight.shape[0], h, w))
    for i in range(k):
        for j in range(k):
            out += np.einsum("nchw,oc->nohw", pad[:, :, i:i + h, j:j + w], weight[:, :, i, j])
    return out


def _layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """detectron2.layers.LayerNorm: over the channel axis of NCHW, eps 1e-6."""
    mean = x.mean(1, keepdims=True)
    var = ((x - mean) ** 2).mean(1, keepdims=True)
    return (x - mean) / np.sqrt(var + LN_EPS) * gamma[:, None, None] + beta[:, None, None]


def _reference(state: dict[str, np.ndarray], x4: np.ndarray, x5: np.ndarray) -> dict:
    def conv_ln(x: np.ndarray, name: str) -> np.ndarray:
        p = f"backbone.{name}"
        return _layer_norm(_conv(x, state[f"{p}.weight"].astype(np.float64)),
                           state[f"{p}.norm.weight"], state[f"{p}.norm.bias"])

    lat5 = conv_ln(x5, "fpn_lateral5")
    lat4 = conv_ln(x4, "fpn_lateral4") + lat5.repeat(2, axis=2).repeat(2, axis=3)
    return {"p5": conv_ln(lat5, "fpn_output5"), "p4": conv_ln(lat4, "fpn_output4")}


@pytest.mark.parametrize(("h", "w"), [(4, 6), (3, 5)])
def test_fpn_with_layer_norm_equals_numpy(state, h, w) -> None:
    rng = np.random.default_rng(h)
    x4 = rng.normal(size=(1, 8, 2 * h, 2 * w)).astype(np.float32)
    x5 = rng.normal(size=(1, 12, h, w)).astype(np.float32)
    p4, p5 = _session(state).run(["p4", "p5"], {"res4": x4, "res5": x5})
    ref = _reference(state, x4.astype(np.float64), x5.astype(np.float64))
    np.testing.assert_allclose(p4, ref["p4"], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(p5, ref["p5"], rtol=1e-4, atol=1e-4)


def _yaml_config(**norms: str) -> Config:
    data = copy.deepcopy(DEFAULTS)
    data["MODEL"]["FPN"]["NORM"] = norms.get("fpn", "")
    data["MODEL"]["RESNETS"]["NORM"] = norms.get("resnet", "FrozenBN")
    return Config(data)


def test_yaml_fpn_norm_ln_is_accepted_only_for_the_fpn() -> None:
    """``MODEL.FPN.NORM: LN`` is Detectron2's get_norm("LN"), built as above; the ResNet's norms
    are unchanged (no LN there)."""
    assert list(fpn_problems(_yaml_config(fpn="LN"))) == []
    assert [p.key for p in fpn_problems(_yaml_config(fpn="LayerNorm"))] == ["MODEL.FPN.NORM"]
    assert [p.key for p in resnet_problems(_yaml_config(resnet="LN"))] == ["MODEL.RESNETS.NORM"]
