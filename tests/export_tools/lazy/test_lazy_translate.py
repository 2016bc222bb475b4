"""LazyConfig tree -> Config: values of the fixture models, refusals by target name and key path."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from export_tools.checkpoint import load_checkpoint
from export_tools.errors import ConfigError
from export_tools.lazy.markers import LambdaRef
from export_tools.lazy.reader import read_lazy_yaml
from export_tools.lazy.translate import lazy_tree_to_config
from tests.conftest import require_fixtures

R50 = "mask_rcnn_R_50_FPN_100ep_LSJ"
REGNETY = "mask_rcnn_regnety_4gf_dds_FPN_100ep_LSJ"


@pytest.fixture(scope="module")
def r50() -> tuple[dict, dict]:
    folder = require_fixtures() / "lazy" / R50
    state, _ = load_checkpoint(folder / "model_final.pth")
    return read_lazy_yaml(folder / "config.yaml"), state


def _refusal(tree: dict, state: dict) -> str:
    with pytest.raises(ConfigError) as err:
        lazy_tree_to_config(tree, state, "config.yaml")
    return str(err.value)


def test_r50_lsj_maps_onto_detectron2_keys(r50) -> None:
    cfg = lazy_tree_to_config(*r50, "config.yaml")
    assert (cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST, cfg.INPUT.FORMAT) == (512, 512,
                                                                                      "BGR")
    box, mask = cfg.MODEL.ROI_BOX_HEAD, cfg.MODEL.ROI_MASK_HEAD
    assert (box.NUM_CONV, box.CONV_DIM, box.NUM_FC, box.FC_DIM) == (4, 64, 1, 256)
    assert box.NORM == "BN" and mask.NORM == "BN"  # the lambda, read from the checkpoint
    assert (mask.NUM_CONV, mask.CONV_DIM) == (4, 64)
    assert cfg.MODEL.ROI_HEADS.NUM_CLASSES == 3 and cfg.MODEL.MASK_ON
    assert cfg.MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS == [[0.5, 1.0, 2.0]]
    assert cfg.MODEL.RPN.PRE_NMS_TOPK_TEST == 1000 and cfg.MODEL.RPN.CONV_DIMS == [-1, -1]
    spec = cfg.LAZY.BACKBONE
    assert spec["kind"] == "FPN" and spec["bottom_up"]["kind"] == "ResNet"
    assert spec["size_divisibility"] == 32 and spec["square_pad"] == 0
    assert [s["num_blocks"] for s in spec["bottom_up"]["stages"]] == [3, 4, 6, 3]


def test_regnet_stage_widths() -> None:
    tree = read_lazy_yaml(require_fixtures() / "lazy" / REGNETY / "config.yaml")
    state, _ = load_checkpoint(require_fixtures() / "lazy" / REGNETY / "model_final.pth")
    up = lazy_tree_to_config(tree, state, "c").LAZY.BACKBONE["bottom_up"]
    stages = up["stages"]
    depths = [s["depth"] for s in stages]
    assert depths == [2, 6, 12, 2]  # the blocks s1.b1..s4.b2 in the checkpoint
    for i, s in enumerate(stages):
        last = f"backbone.bottom_up.s{i + 1}.b{s['depth']}.f.c.weight"
        assert state[last].shape[0] == s["width"]


def test_unknown_target_is_refused_by_name_and_key_path(r50) -> None:
    tree, state = copy.deepcopy(r50[0]), r50[1]
    tree["model"]["roi_heads"]["box_head"]["_target_"] = "my.project.FancyHead"
    msg = _refusal(tree, state)
    assert "my.project.FancyHead" in msg and "key model.roi_heads.box_head._target_" in msg


def test_unknown_argument_is_refused_by_key_path(r50) -> None:
    tree, state = copy.deepcopy(r50[0]), r50[1]
    tree["model"]["backbone"]["bottom_up"]["stages"][2]["deform"] = True
    msg = _refusal(tree, state)
    assert "key model.backbone.bottom_up.stages.2.deform" in msg


def test_unknown_block_class_is_refused(r50) -> None:
    tree, state = copy.deepcopy(r50[0]), r50[1]
    tree["model"]["backbone"]["bottom_up"]["stages"][0]["block_class"] = "x.DeformBlock"
    assert "key model.backbone.bottom_up.stages.0.block_class" in _refusal(tree, state)


def test_lambda_norm_without_batch_norm_statistics_is_refused(r50) -> None:
    tree, state = r50
    no_stats = {k: v for k, v in state.items() if "box_head.conv1.norm.running" not in k}
    msg = _refusal(tree, no_stats)
    assert "key model.roi_heads.box_head.conv_norm" in msg and "lambda" in msg
    assert isinstance(tree["model"]["roi_heads"]["box_head"]["conv_norm"], LambdaRef)


def test_test_time_augmentation_must_be_one_resize(r50) -> None:
    tree, state = copy.deepcopy(r50[0]), r50[1]
    augs = tree["dataloader"]["test"]["mapper"]["augmentations"]
    augs.append({"_target_": "detectron2.data.transforms.RandomFlip"})
    assert "key dataloader.test.mapper.augmentations" in _refusal(tree, state)
    augs[:] = [{"_target_": "detectron2.data.transforms.RandomFlip"}]
    msg = _refusal(tree, state)
    assert "RandomFlip" in msg and "dataloader.test.mapper.augmentations.0._target_" in msg


def test_missing_model_section(r50) -> None:
    assert "key model" in _refusal({"train": {}}, {"x": np.zeros(1)})


VITDET = "mask_rcnn_vitdet_b_100ep"


@pytest.fixture(scope="module")
def vitdet() -> tuple[dict, dict]:
    folder = require_fixtures() / "lazy" / VITDET
    state, _ = load_checkpoint(folder / "model_final.pth")
    return read_lazy_yaml(folder / "config.yaml"), state


def test_vitdet_spec(vitdet) -> None:
    cfg = lazy_tree_to_config(*vitdet, "config.yaml")
    spec = cfg.LAZY.BACKBONE
    assert spec["kind"] == "SimpleFeaturePyramid" and spec["square_pad"] == 512
    assert spec["size_divisibility"] == 32 and spec["norm"] == "LN"
    net = spec["net"]
    assert net["ln_eps"] == 1e-6 and net["window_block_indexes"] == [0, 2]
    assert cfg.INPUT.FORMAT == "RGB" and cfg.MODEL.ROI_BOX_HEAD.NORM == "LN"


def test_vitdet_without_square_pad_is_refused(vitdet) -> None:
    tree, state = copy.deepcopy(vitdet[0]), vitdet[1]
    tree["model"]["backbone"]["square_pad"] = 0
    assert "key model.backbone.square_pad" in _refusal(tree, state)


def test_vit_other_norm_layer_is_refused(vitdet) -> None:
    tree, state = copy.deepcopy(vitdet[0]), vitdet[1]
    tree["model"]["backbone"]["net"]["norm_layer"] = "BN"
    assert "key model.backbone.net.norm_layer" in _refusal(tree, state)


def test_mvit_block_schedule_matches_the_checkpoint() -> None:
    from export_tools.modeling.backbone.mvit import block_schedule

    folder = require_fixtures() / "lazy" / "mask_rcnn_mvitv2_t_3x"
    state, _ = load_checkpoint(folder / "model_final.pth")
    spec = lazy_tree_to_config(read_lazy_yaml(folder / "config.yaml"), state,
                               "c").LAZY.BACKBONE["bottom_up"]
    for i, blk in enumerate(block_schedule(spec)):
        prefix = f"backbone.bottom_up.blocks.{i}"
        hd = blk["dim_out"] // blk["heads"]
        assert state[f"{prefix}.attn.qkv.weight"].shape == (3 * blk["dim_out"], blk["dim"])
        assert state[f"{prefix}.attn.pool_q.weight"].shape[0] == hd
        size = blk["size"]
        rows = 2 * max(size // blk["stride_q"], size // blk["stride_kv"]) - 1
        assert state[f"{prefix}.attn.rel_pos_h"].shape == (rows, hd)
        assert (f"{prefix}.proj.weight" in state) == (blk["dim"] != blk["dim_out"])


@pytest.mark.parametrize(("depth", "blocks", "outs", "block"), [
    (50, [3, 4, 6, 3], [256, 512, 1024, 2048], "bottleneck"),
    (101, [3, 4, 23, 3], [256, 512, 1024, 2048], "bottleneck"),
    (18, [2, 2, 2, 2], [64, 128, 256, 512], "basic"),
])
def test_make_default_stages_expands_like_detectron2(r50, depth, blocks, outs, block) -> None:
    """The model zoo's configs write ``L(ResNet.make_default_stages)(depth=50, ...)``."""
    tree, state = copy.deepcopy(r50[0]), r50[1]
    up = tree["model"]["backbone"]["bottom_up"]
    up["stem"]["out_channels"] = 64
    up["stages"] = {"_target_": "detectron2.modeling.ResNet.make_default_stages",
                    "depth": depth, "stride_in_1x1": True, "norm": "SyncBN"}
    spec = lazy_tree_to_config(tree, state, "c").LAZY.BACKBONE["bottom_up"]
    assert spec["block"] == block
    assert [s["num_blocks"] for s in spec["stages"]] == blocks
    assert [s["out_channels"] for s in spec["stages"]] == outs
    assert [s["first_stride"] for s in spec["stages"]] == [1, 2, 2, 2]
    if block == "bottleneck":
        assert [s["bottleneck_channels"] for s in spec["stages"]] == [o // 4 for o in outs]
    assert spec["strides"] == {"res2": 4, "res3": 8, "res4": 16, "res5": 32}


def test_make_default_stages_bad_depth_names_key(r50) -> None:
    tree, state = copy.deepcopy(r50[0]), r50[1]
    tree["model"]["backbone"]["bottom_up"]["stages"] = {
        "_target_": "detectron2.modeling.ResNet.make_default_stages", "depth": 42}
    assert "key model.backbone.bottom_up.stages.depth" in _refusal(tree, state)


def test_vitdet_square_pad_must_match_img_size_for_global_rel_pos(vitdet) -> None:
    tree, state = copy.deepcopy(vitdet[0]), vitdet[1]
    tree["model"]["backbone"]["square_pad"] = 1024
    msg = _refusal(tree, state)
    assert "key model.backbone.square_pad" in msg and "img_size" in msg


def _as_cascade(tree: dict) -> dict:
    """ViTDet's cascade form: three LN conv heads, class-agnostic predictors, growing weights."""
    tree = copy.deepcopy(tree)
    heads = tree["model"]["roi_heads"]
    heads["_target_"] = "detectron2.modeling.roi_heads.CascadeROIHeads"
    box_head, predictor = heads.pop("box_head"), heads.pop("box_predictor")
    heads.pop("proposal_matcher")
    heads["box_heads"] = [copy.deepcopy(box_head) for _ in range(3)]
    heads["box_predictors"] = []
    for k in (1, 2, 3):
        p = copy.deepcopy(predictor)
        p["cls_agnostic_bbox_reg"] = True
        p["box2box_transform"]["weights"] = [10 * k, 10 * k, 5 * k, 5 * k]
        heads["box_predictors"].append(p)
    heads["proposal_matchers"] = [{"_target_": "detectron2.modeling.matcher.Matcher",
                                   "thresholds": [t], "labels": [0, 1],
                                   "allow_low_quality_matches": False} for t in (0.5, 0.6, 0.7)]
    return tree


def test_cascade_roi_heads_map_onto_the_cascade_builder(vitdet) -> None:
    """No lazy fixture has cascade heads: the mapping is checked, and the graph built and run
    with synthetic weights (the cascade builder itself is parity-tested on the YAML fixture)."""
    import onnxruntime as ort

    from export_tools.export import build_onnx_from_weights
    from export_tools.perf.random_weights import SyntheticWeights

    cfg = lazy_tree_to_config(_as_cascade(vitdet[0]), vitdet[1], "c")
    assert cfg.MODEL.ROI_HEADS.NAME == "CascadeROIHeads"
    assert cfg.MODEL.ROI_BOX_CASCADE_HEAD.BBOX_REG_WEIGHTS == [[10, 10, 5, 5], [20, 20, 10, 10],
                                                               [30, 30, 15, 15]]
    assert cfg.MODEL.ROI_BOX_HEAD.CLS_AGNOSTIC_BBOX_REG and cfg.MODEL.ROI_BOX_HEAD.NORM == "LN"
    weights = SyntheticWeights.for_config(cfg)
    model = build_onnx_from_weights(cfg, weights, model_name="cascade")
    assert "roi_heads.box_head.2.conv4.norm.weight" in weights.requested
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    image = np.random.default_rng(0).uniform(0, 255, (1, 3, 320, 480)).astype(np.float32)
    out = dict(zip([o.name for o in session.get_outputs()], session.run(None, {"image": image})))
    assert out["boxes"].shape[1] == 4 and len(out["scores"]) == len(out["mask_probs"])


def test_cascade_needs_class_agnostic_regression(vitdet) -> None:
    tree = _as_cascade(vitdet[0])
    tree["model"]["roi_heads"]["box_predictors"][2]["cls_agnostic_bbox_reg"] = False
    assert "key model.roi_heads.box_predictors.2.cls_agnostic_bbox_reg" in _refusal(tree,
                                                                                     vitdet[1])
