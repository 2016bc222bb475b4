"""Model-zoo style ``_BASE_`` chains: relative paths, recursion, base-first merging, cycles."""

from __future__ import annotations

from pathlib import Path

import pytest

from export_tools.config import ConfigError, load_config
from export_tools.modeling.supported import check_supported

# Written in the shape of Detectron2's model-zoo configs/Base-RCNN-FPN.yaml: tuple strings,
# quoted names, comments.
BASE_RCNN_FPN = """\
MODEL:
  META_ARCHITECTURE: "GeneralizedRCNN"
  BACKBONE:
    NAME: "build_resnet_fpn_backbone"
  RESNETS:
    OUT_FEATURES: ["res2", "res3", "res4", "res5"]
  FPN:
    IN_FEATURES: ["res2", "res3", "res4", "res5"]
  ANCHOR_GENERATOR:
    SIZES: [[32], [64], [128], [256], [512]]  # one size per feature map
    ASPECT_RATIOS: [[0.5, 1.0, 2.0]]
  RPN:
    IN_FEATURES: ["p2", "p3", "p4", "p5", "p6"]
    PRE_NMS_TOPK_TRAIN: 2000
    PRE_NMS_TOPK_TEST: 1000
    POST_NMS_TOPK_TRAIN: 1000
    POST_NMS_TOPK_TEST: 1000
  ROI_HEADS:
    NAME: "StandardROIHeads"
    IN_FEATURES: ["p2", "p3", "p4", "p5"]
  ROI_BOX_HEAD:
    NAME: "FastRCNNConvFCHead"
    NUM_FC: 2
    POOLER_RESOLUTION: 7
  ROI_MASK_HEAD:
    NAME: "MaskRCNNConvUpsampleHead"
    NUM_CONV: 4
    POOLER_RESOLUTION: 14
DATASETS:
  TRAIN: ("coco_2017_train",)
  TEST: ("coco_2017_val",)
SOLVER:
  IMS_PER_BATCH: 16
  BASE_LR: 0.02
  STEPS: (60000, 80000)
  MAX_ITER: 90000
INPUT:
  MIN_SIZE_TRAIN: (640, 672, 704, 736, 768, 800)
VERSION: 2
"""

MASK_RCNN_CHILD = """\
_BASE_: "../Base-RCNN-FPN.yaml"
MODEL:
  WEIGHTS: "detectron2://ImageNetPretrained/MSRA/R-50.pkl"
  MASK_ON: True
  RESNETS:
    DEPTH: 50
"""


@pytest.fixture
def zoo(write_yaml) -> Path:
    """A model-zoo layout: Base-RCNN-FPN.yaml and COCO-InstanceSegmentation/mask_rcnn.yaml."""
    write_yaml(BASE_RCNN_FPN, "Base-RCNN-FPN.yaml")
    return write_yaml(MASK_RCNN_CHILD, "COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml")


def test_child_with_relative_base_merges_base_first(zoo: Path) -> None:
    cfg = load_config(zoo)
    assert cfg.MODEL.MASK_ON is True
    assert cfg.MODEL.WEIGHTS == "detectron2://ImageNetPretrained/MSRA/R-50.pkl"
    assert cfg.MODEL.BACKBONE.NAME == "build_resnet_fpn_backbone"
    assert cfg.MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION == 7
    assert cfg.MODEL.RPN.PRE_NMS_TOPK_TEST == 1000
    assert cfg.MODEL.RPN.NMS_THRESH == 0.7  # from the defaults: neither file sets it
    assert cfg.MODEL.ANCHOR_GENERATOR.SIZES == [[32], [64], [128], [256], [512]]
    check_supported(cfg)


def test_tuple_strings_of_the_model_zoo_become_lists(zoo: Path) -> None:
    cfg = load_config(zoo)
    assert cfg.DATASETS.TRAIN == ["coco_2017_train"]
    assert cfg.SOLVER.STEPS == [60000, 80000]
    assert cfg.INPUT.MIN_SIZE_TRAIN == [640, 672, 704, 736, 768, 800]


def test_three_level_chain_applies_the_nearest_override(write_yaml, zoo: Path) -> None:
    grandchild = write_yaml(
        "_BASE_: ../../COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml\n"
        "MODEL:\n  RESNETS:\n    DEPTH: 101\n  ROI_BOX_HEAD:\n    POOLER_RESOLUTION: 5\n"
        "SOLVER:\n  BASE_LR: 0.01\n",
        "mine/deeper/model.yaml",
    )
    cfg = load_config(grandchild)
    assert cfg.MODEL.RESNETS.DEPTH == 101
    assert cfg.MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION == 5
    assert cfg.MODEL.ROI_BOX_HEAD.NUM_FC == 2  # from the base, two levels up
    assert cfg.MODEL.MASK_ON is True  # from the middle file
    assert cfg.SOLVER.BASE_LR == 0.01
    assert cfg.SOLVER.MAX_ITER == 90000


def test_opts_apply_after_the_whole_chain(zoo: Path) -> None:
    cfg = load_config(zoo, ["MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION", "9"])
    assert cfg.MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION == 9


def test_list_of_bases_merges_in_order(write_yaml) -> None:
    write_yaml({"MODEL": {"RESNETS": {"DEPTH": 101, "NORM": "GN"}}}, "a.yaml")
    write_yaml({"MODEL": {"RESNETS": {"DEPTH": 152}}}, "b.yaml")
    child = write_yaml({"_BASE_": ["a.yaml", "b.yaml"], "MODEL": {"MASK_ON": True}})
    cfg = load_config(child)
    assert cfg.MODEL.RESNETS.DEPTH == 152
    assert cfg.MODEL.RESNETS.NORM == "GN"
    assert cfg.MODEL.MASK_ON is True


def test_shared_base_twice_is_not_a_cycle(write_yaml) -> None:
    write_yaml({"MODEL": {"RESNETS": {"DEPTH": 101}}}, "common.yaml")
    write_yaml({"_BASE_": "common.yaml", "MODEL": {"MASK_ON": True}}, "left.yaml")
    write_yaml({"_BASE_": "common.yaml", "MODEL": {"KEYPOINT_ON": True}}, "right.yaml")
    cfg = load_config(write_yaml({"_BASE_": ["left.yaml", "right.yaml"]}))
    assert (cfg.MODEL.MASK_ON, cfg.MODEL.KEYPOINT_ON, cfg.MODEL.RESNETS.DEPTH) == (True, True, 101)


def test_cycle_is_refused(write_yaml) -> None:
    write_yaml({"_BASE_": "sub/b.yaml"}, "a.yaml")
    write_yaml({"_BASE_": "../a.yaml"}, "sub/b.yaml")
    with pytest.raises(ConfigError, match="cycle") as info:
        load_config(write_yaml({"_BASE_": "a.yaml"}, "top.yaml"))
    assert info.value.key == "_BASE_"
    assert "a.yaml" in str(info.value) and "b.yaml" in str(info.value)


def test_self_reference_is_a_cycle(write_yaml) -> None:
    with pytest.raises(ConfigError, match="cycle"):
        load_config(write_yaml({"_BASE_": "config.yaml"}))


def test_missing_base_names_the_child(write_yaml) -> None:
    child = write_yaml({"_BASE_": "../nowhere/Base.yaml"}, "sub/child.yaml")
    with pytest.raises(ConfigError, match="not found") as info:
        load_config(child)
    assert info.value.file == str(child)
    assert info.value.key == "_BASE_"


def test_error_in_a_base_names_the_base_file(write_yaml) -> None:
    base = write_yaml({"MODEL": {"RPN": {"NMS_THRES": 0.5}}}, "Base.yaml")
    child = write_yaml({"_BASE_": "../Base.yaml"}, "sub/child.yaml")
    with pytest.raises(ConfigError, match="NMS_THRESH") as info:
        load_config(child)
    assert info.value.file == str(base.resolve())
    assert info.value.key == "MODEL.RPN.NMS_THRES"


@pytest.mark.parametrize(
    "value", [5, "", [], None, ["ok.yaml", 3], "https://example.invalid/Base.yaml"]
)
def test_malformed_base_value_is_refused(write_yaml, value) -> None:
    write_yaml({"VERSION": 2}, "ok.yaml")
    with pytest.raises(ConfigError) as info:
        load_config(write_yaml({"_BASE_": value}))
    assert info.value.key == "_BASE_"


def test_base_key_is_only_valid_at_the_top(write_yaml) -> None:
    write_yaml({"VERSION": 2}, "ok.yaml")
    with pytest.raises(ConfigError, match="unknown config key MODEL._BASE_"):
        load_config(write_yaml({"MODEL": {"_BASE_": "ok.yaml"}}))
