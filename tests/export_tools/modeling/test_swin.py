"""Swin Transformer backbone from standard ops against Detectron2's ``SwinTransformer``: data
from ``make_swin_data.py``; the graph is built once with dynamic H/W and run on every case."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto

from export_tools.graph import GraphBuilder
from export_tools.modeling.backbone.swin import (
    build_swin,
    relative_position_bias,
    relative_position_index,
)
from export_tools.modeling.weights import WeightStore
from tests.export_tools.modeling.make_swin_data import CASES, PREFIX, SPEC

DATA = np.load(Path(__file__).resolve().parent / "swin_expected.npz")
STATE = {k: DATA[k] for k in DATA.files if k.startswith(PREFIX)}
OUTS = [f"p{i}" for i in SPEC["out_indices"]]
OUR_SPEC = {"kind": "SwinTransformer", "patch_size": 4, "embed_dim": SPEC["embed_dim"],
            "depths": SPEC["depths"], "num_heads": SPEC["num_heads"],
            "window_size": SPEC["window_size"], "mlp_ratio": SPEC["mlp_ratio"], "qkv_bias": True,
            "qk_scale": 0.0, "ln_eps": 1e-5, "patch_norm": True, "out_features": OUTS}


def _model(state: dict[str, np.ndarray]) -> onnx.ModelProto:
    g = GraphBuilder("swin")
    image = g.add_input("image", TensorProto.FLOAT, [1, 3, "h", "w"])
    w = WeightStore(state)
    feats = build_swin(g, w, image, PREFIX, OUR_SPEC)
    w.finish()  # every weight (and index buffer) of the checkpoint is used
    for name in OUTS:
        g.add_output(feats[name].tensor, name, TensorProto.FLOAT,
                     [1, feats[name].channels, f"{name}_h", f"{name}_w"])
    model = g.build()
    onnx.checker.check_model(model, full_check=True)
    return model


def _run(model: onnx.ModelProto, case: str) -> dict[str, np.ndarray]:
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return dict(zip(OUTS, session.run(OUTS, {"image": DATA[f"{case}/image"]})))


@pytest.fixture(scope="module")
def model() -> onnx.ModelProto:
    return _model(STATE)


@pytest.mark.parametrize("case", list(CASES))
def test_every_output_matches_detectron2_on_onnxruntime(model: onnx.ModelProto,
                                                        case: str) -> None:
    outs = _run(model, case)
    for name in OUTS:
        want = DATA[f"{case}/{name}"]
        assert outs[name].shape == want.shape, name
        np.testing.assert_allclose(outs[name], want, rtol=1e-4, atol=1e-4, err_msg=name)


def test_the_index_is_recomputed_when_the_checkpoint_has_none() -> None:
    state = {k: v for k, v in STATE.items() if not k.endswith("relative_position_index")}
    assert len(state) < len(STATE)
    outs = _run(_model(state), "odd")
    for name in OUTS:
        np.testing.assert_allclose(outs[name], DATA[f"odd/{name}"], rtol=1e-4, atol=1e-4)


def test_recomputed_index_is_detectron2s_buffer() -> None:
    ws = SPEC["window_size"]
    buffer = DATA[f"{PREFIX}.layers.0.blocks.0.attn.relative_position_index"]
    np.testing.assert_array_equal(relative_position_index(ws), buffer)


def test_an_index_outside_the_table_is_refused() -> None:
    from export_tools.errors import WeightsError

    prefix = f"{PREFIX}.layers.0.blocks.0.attn"
    state = dict(STATE)
    state[f"{prefix}.relative_position_index"] = STATE[f"{prefix}.relative_position_index"] + 200
    with pytest.raises(WeightsError, match="relative_position_index"):
        relative_position_bias(WeightStore(state), prefix, SPEC["window_size"], 2)


def test_the_data_exercises_padding_shift_and_merging() -> None:
    """Sides off the patch and window multiples, odd grids to merge, a grid under one window."""
    h, w = CASES["odd"]
    assert h % 4 and w % 4
    grids = [DATA[f"odd/{n}"].shape[2:] for n in OUTS]
    ws = SPEC["window_size"]
    assert any(s % ws for g in grids for s in g) and any(s % 2 for g in grids[:-1] for s in g)
    assert min(grids[-1]) < ws and all(d >= 2 for d in SPEC["depths"])


def test_an_fpn_with_layer_norm_over_swin_builds_and_runs() -> None:
    """The LazyConfig backbone: FPN (norm LN, LastLevelMaxPool) on ``p0..p3`` at any size that
    is a multiple of 32 (Detectron2 pads to it), token grids off the window multiple."""
    import onnxruntime as ort

    from export_tools.config import Config
    from export_tools.modeling.backbone.lazy import build_lazy_backbone

    rng = np.random.default_rng(3)
    out, state = 16, dict(STATE)
    for i in range(len(OUTS)):
        ch, lvl = SPEC["embed_dim"] * 2**i, i + 2
        for conv, (c_in, k) in ((f"fpn_lateral{lvl}", (ch, 1)), (f"fpn_output{lvl}", (out, 3))):
            state[f"backbone.{conv}.weight"] = rng.standard_normal((out, c_in, k, k),
                                                                   dtype=np.float32)
            state[f"backbone.{conv}.norm.weight"] = np.ones(out, np.float32)
            state[f"backbone.{conv}.norm.bias"] = np.zeros(out, np.float32)
    spec = {"kind": "FPN", "bottom_up": {**OUR_SPEC, "strides": {n: 2 ** (i + 2) for i, n in
                                                                  enumerate(OUTS)}},
            "in_features": OUTS, "out_channels": out, "norm": "LN", "fuse_type": "sum",
            "top_block": "maxpool", "size_divisibility": 32, "square_pad": 0}
    g = GraphBuilder("swin_fpn")
    image = g.add_input("image", TensorProto.FLOAT, [1, 3, "h", "w"])
    w = WeightStore(state)
    feats = build_lazy_backbone(g, w, image, Config({"LAZY": {"BACKBONE": spec}}))
    w.finish()
    names = sorted(feats)
    assert names == ["p2", "p3", "p4", "p5", "p6"]
    for name in names:
        g.add_output(feats[name].tensor, name, TensorProto.FLOAT, [1, out, None, None])
    session = ort.InferenceSession(g.build().SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    for h, wd in ((64, 64), (96, 160)):
        results = session.run(names, {"image": rng.standard_normal((1, 3, h, wd),
                                                                   dtype=np.float32)})
        for name, value in zip(names, results):
            stride = 2 ** int(name[1:])
            assert value.shape == (1, out, -(-h // stride), -(-wd // stride)), name
            assert np.isfinite(value).all()
