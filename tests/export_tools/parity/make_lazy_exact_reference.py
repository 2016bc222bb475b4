"""Regenerate ``lazy_exact/<model>.npz``: Detectron2's own model of a LazyConfig fixture run in
float64 (the exact answer the fixture's float32 predictions approximate). Needs real Detectron2:

    PYTHONPATH=. /path/to/detectron2-venv/bin/python -m \\
        tests.export_tools.parity.make_lazy_exact_reference DETECTRON2_SRC [MODEL ...]

The fixtures ship no loadable config (``config.yaml.pkl`` is a cloudpickle, never read; the LSJ
``config.yaml`` cannot be loaded back), so Detectron2's model is built from the fixture's
``source_config`` with the width changes its ``manifest.json`` lists (``_OVERRIDES`` below
transcribes them), and every checkpoint key must load. Saved per image ``i``: ``i_boxes``,
``i_scores``, ``i_classes``, ``i_masks`` (raw, network resolution; masks stored as float32) and
``i_proposals`` / ``i_logits`` (the RPN's kept proposals and their objectness logits).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

FIXTURES = Path(__file__).resolve().parents[4] / "shared" / "fixtures"
OUT = Path(__file__).resolve().parent / "lazy_exact"
HEADS = {"out_channels": 64, "box_conv": [64] * 4, "box_fc": [256], "mask_conv": [64] * 5}
_OVERRIDES = {
    "mask_rcnn_regnetx_4gf_dds_FPN_100ep_LSJ": {"w_0": 24, "w_a": 9.6625, "group_width": 10},
    "mask_rcnn_regnety_4gf_dds_FPN_100ep_LSJ": {"w_0": 24, "w_a": 7.8525, "group_width": 16},
    "mask_rcnn_vitdet_b_100ep": {"embed_dim": 192, "depth": 4, "num_heads": 3,
                                 "window_block_indexes": [0, 2], "img_size": 512},
}


def _r50_quarter_stages(norm: str) -> list:
    from detectron2.modeling.backbone.resnet import BottleneckBlock, ResNet

    stages = []
    for i, (n, cin, cout) in enumerate(zip([3, 4, 6, 3], [16, 64, 128, 256], [64, 128, 256, 512])):
        stages.append(ResNet.make_stage(
            BottleneckBlock, n, stride_per_block=[1 if i == 0 else 2] + [1] * (n - 1),
            in_channels=cin, out_channels=cout, bottleneck_channels=cout // 4,
            stride_in_1x1=True, norm=norm))
    return stages


def _backbone_overrides(model_cfg, name: str) -> None:
    from detectron2.config import LazyCall

    if "regnet" in name:
        b = model_cfg.backbone.bottom_up
        for key, value in _OVERRIDES[name].items():
            setattr(b, key, value)
        b.norm = "BN"  # SyncBN in eval mode is a batch norm
    elif "R_50" in name:
        b = model_cfg.backbone.bottom_up
        b.stem.out_channels, b.stem.norm = 16, "BN"
        b.stages = LazyCall(_r50_quarter_stages)(norm="BN")
    elif "vitdet" in name:
        for key, value in _OVERRIDES[name].items():
            setattr(model_cfg.backbone.net, key, value)
        model_cfg.backbone.square_pad = 512
    else:
        raise SystemExit(f"{name}: no transcription of its manifest overrides")


def build_detectron2_model(d2_src: Path, name: str):
    """Detectron2's eval-mode model of fixture ``name`` with its checkpoint loaded (strict)."""
    import torch
    from detectron2.config import LazyConfig, instantiate
    from detectron2.layers import ShapeSpec

    folder = FIXTURES / "lazy" / name
    man = json.loads((folder / "manifest.json").read_text())
    m = LazyConfig.load(str(d2_src / man["source_config"])).model
    _backbone_overrides(m, name)
    m.backbone.out_channels = HEADS["out_channels"]
    m.proposal_generator.head.in_channels = HEADS["out_channels"]
    m.roi_heads.box_head.conv_dims = HEADS["box_conv"]
    m.roi_heads.box_head.fc_dims = HEADS["box_fc"]
    m.roi_heads.box_head.input_shape = ShapeSpec(channels=64, height=7, width=7)
    m.roi_heads.box_predictor.input_shape = ShapeSpec(channels=256)
    m.roi_heads.mask_head.conv_dims = HEADS["mask_conv"]
    m.roi_heads.mask_head.input_shape = ShapeSpec(channels=64, width=14, height=14)
    m.roi_heads.num_classes = len(man["thing_classes"])
    model = instantiate(m).eval()
    state = torch.load(folder / "model_final.pth", map_location="cpu", weights_only=True)["model"]
    missing = model.load_state_dict({k: torch.as_tensor(v) for k, v in state.items()}, strict=True)
    assert not missing.missing_keys and not missing.unexpected_keys, missing
    return model


def _float64_nms() -> None:
    """Detectron2's float32 anchors meet float64 scores in torchvision's nms: cast the boxes."""
    import torchvision.ops.boxes as tv_boxes

    plain = tv_boxes.nms
    tv_boxes.nms = lambda boxes, scores, thresh: plain(boxes.to(scores.dtype), scores, thresh)


def exact_outputs(model, image) -> dict[str, np.ndarray]:
    import torch

    x = torch.as_tensor(image).double()
    with torch.no_grad():
        inputs = [{"image": x, "height": x.shape[1], "width": x.shape[2]}]
        images = model.preprocess_image(inputs)
        features = model.backbone(images.tensor)
        proposals, _ = model.proposal_generator(images, features)
        out = model.roi_heads(images, features, proposals)[0][0]  # what inference() returns
    return {"boxes": out.pred_boxes.tensor.numpy(), "scores": out.scores.numpy(),
            "classes": out.pred_classes.numpy(),
            "masks": out.pred_masks[:, 0].numpy().astype(np.float32),
            "proposals": proposals[0].proposal_boxes.tensor.numpy(),
            "logits": proposals[0].objectness_logits.numpy()}


def main(argv: list[str]) -> None:
    d2_src = Path(argv[0])
    _float64_nms()
    names = argv[1:] or list(_OVERRIDES) + ["mask_rcnn_R_50_FPN_100ep_LSJ"]
    OUT.mkdir(exist_ok=True)
    for name in names:
        model = build_detectron2_model(d2_src, name).double()
        arrays = {}
        for i in range(3):
            with np.load(FIXTURES / "lazy" / name / f"expected_{i}.npz") as e:
                for key, value in exact_outputs(model, e["input"]).items():
                    arrays[f"{i}_{key}"] = value
        np.savez_compressed(OUT / f"{name}.npz", **arrays)


if __name__ == "__main__":
    main(sys.argv[1:])
