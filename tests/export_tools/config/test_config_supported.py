"""``check_supported``: each setting the exporter cannot build is refused, naming its key."""

from __future__ import annotations

import pytest
from cfg_helpers import FIXTURE_MODELS, fixture_config_path

from export_tools.config import Config, ConfigError, load_config
from export_tools.modeling.supported import NORMS, check_supported

RCNN = "mask_rcnn_R_50_FPN"
C4 = "mask_rcnn_R_50_C4"
RETINANET = "retinanet_R_50_FPN"
PANOPTIC = "panoptic_fpn_R_50"
KEYPOINT = "keypoint_rcnn_R_50_FPN"

# (fixture model, opts, key the error must name)
UNSUPPORTED = [
    (RCNN, ["MODEL.META_ARCHITECTURE", "SemanticSegmentorV2"], "MODEL.META_ARCHITECTURE"),
    # fast_rcnn_R_50_FPN_1x: precomputed proposals stay refused
    (RCNN, ["MODEL.LOAD_PROPOSALS", "True", "MODEL.PROPOSAL_GENERATOR.NAME",
            "PrecomputedProposals"], "MODEL.LOAD_PROPOSALS"),
    (RCNN, ["MODEL.META_ARCHITECTURE", "ProposalNetwork", "MODEL.PROPOSAL_GENERATOR.NAME",
            "RRPN"], "MODEL.PROPOSAL_GENERATOR.NAME"),
    (PANOPTIC, ["MODEL.META_ARCHITECTURE", "SemanticSegmentor", "MODEL.SEM_SEG_HEAD.NORM",
                "LN"], "MODEL.SEM_SEG_HEAD.NORM"),
    (RCNN, ["MODEL.BACKBONE.NAME", "build_vit_backbone"], "MODEL.BACKBONE.NAME"),
    (RCNN, ["MODEL.RESNETS.DEPTH", "200"], "MODEL.RESNETS.DEPTH"),
    (RCNN, ["MODEL.RESNETS.NORM", "LN"], "MODEL.RESNETS.NORM"),
    (RCNN, ["MODEL.FPN.NORM", "IN"], "MODEL.FPN.NORM"),
    (RCNN, ["MODEL.ROI_BOX_HEAD.NORM", "LN"], "MODEL.ROI_BOX_HEAD.NORM"),
    (RCNN, ["MODEL.ROI_MASK_HEAD.NORM", "LN"], "MODEL.ROI_MASK_HEAD.NORM"),
    (RETINANET, ["MODEL.RETINANET.NORM", "LN"], "MODEL.RETINANET.NORM"),
    (PANOPTIC, ["MODEL.SEM_SEG_HEAD.NORM", "LN"], "MODEL.SEM_SEG_HEAD.NORM"),
    (RCNN, ["MODEL.RESNETS.DEFORM_ON_PER_STAGE", "[False, True, True, True]",
            "MODEL.RESNETS.DEPTH", "34", "MODEL.RESNETS.RES2_OUT_CHANNELS", "64"],
     "MODEL.RESNETS.DEFORM_ON_PER_STAGE"),
    (C4, ["MODEL.RESNETS.DEFORM_ON_PER_STAGE", "[False, True, True, True]"],
     "MODEL.RESNETS.DEFORM_ON_PER_STAGE"),
    (RCNN, ["MODEL.RESNETS.DEFORM_ON_PER_STAGE", "[False, True]"],
     "MODEL.RESNETS.DEFORM_ON_PER_STAGE"),
    (RCNN, ["MODEL.RESNETS.DEFORM_ON_PER_STAGE", "[False, True, True, True]",
            "MODEL.RESNETS.DEFORM_NUM_GROUPS", "3"], "MODEL.RESNETS.DEFORM_NUM_GROUPS"),
    (RCNN, ["MODEL.RESNETS.RES5_DILATION", "4"], "MODEL.RESNETS.RES5_DILATION"),
    (RCNN, ["MODEL.RESNETS.DEPTH", "18"], "MODEL.RESNETS.RES2_OUT_CHANNELS"),
    (RCNN, ["MODEL.RESNETS.DEPTH", "34", "MODEL.RESNETS.RES2_OUT_CHANNELS", "64",
            "MODEL.RESNETS.RES5_DILATION", "2"], "MODEL.RESNETS.RES5_DILATION"),
    (RCNN, ["MODEL.RESNETS.DEPTH", "18", "MODEL.RESNETS.RES2_OUT_CHANNELS", "64",
            "MODEL.RESNETS.NUM_GROUPS", "32"], "MODEL.RESNETS.NUM_GROUPS"),
    (RCNN, ["MODEL.FPN.FUSE_TYPE", "max"], "MODEL.FPN.FUSE_TYPE"),
    (RCNN, ["MODEL.PROPOSAL_GENERATOR.NAME", "RRPN"], "MODEL.PROPOSAL_GENERATOR.NAME"),
    (RCNN, ["MODEL.PROPOSAL_GENERATOR.NAME", "PrecomputedProposals"],
     "MODEL.PROPOSAL_GENERATOR.NAME"),
    (RCNN, ["MODEL.RPN.HEAD_NAME", "MyRPNHead"], "MODEL.RPN.HEAD_NAME"),
    (RCNN, ["MODEL.ANCHOR_GENERATOR.NAME", "RotatedAnchorGenerator"],
     "MODEL.ANCHOR_GENERATOR.NAME"),
    (RETINANET, ["MODEL.ANCHOR_GENERATOR.NAME", "RotatedAnchorGenerator"],
     "MODEL.ANCHOR_GENERATOR.NAME"),
    (RCNN, ["MODEL.ROI_HEADS.NAME", "RROIHeads"], "MODEL.ROI_HEADS.NAME"),
    (RCNN, ["MODEL.ROI_BOX_HEAD.NAME", ""], "MODEL.ROI_BOX_HEAD.NAME"),
    (RCNN, ["MODEL.ROI_BOX_HEAD.NAME", "MyBoxHead"], "MODEL.ROI_BOX_HEAD.NAME"),
    (C4, ["MODEL.ROI_BOX_HEAD.NAME", "MyBoxHead"], "MODEL.ROI_BOX_HEAD.NAME"),
    (RCNN, ["MODEL.ROI_BOX_HEAD.POOLER_TYPE", "ROIPool"], "MODEL.ROI_BOX_HEAD.POOLER_TYPE"),
    (RCNN, ["MODEL.ROI_MASK_HEAD.POOLER_TYPE", "ROIAlignRotated"],
     "MODEL.ROI_MASK_HEAD.POOLER_TYPE"),
    (KEYPOINT, ["MODEL.ROI_KEYPOINT_HEAD.POOLER_TYPE", "ROIPool"],
     "MODEL.ROI_KEYPOINT_HEAD.POOLER_TYPE"),
    (RCNN, ["MODEL.ROI_MASK_HEAD.NAME", "MaskRCNNConvUpsamplePointSupHead"],
     "MODEL.ROI_MASK_HEAD.NAME"),
    (KEYPOINT, ["MODEL.ROI_KEYPOINT_HEAD.NAME", "MyKeypointHead"], "MODEL.ROI_KEYPOINT_HEAD.NAME"),
    (C4, ["MODEL.KEYPOINT_ON", "true"], "MODEL.KEYPOINT_ON"),
    (PANOPTIC, ["MODEL.SEM_SEG_HEAD.NAME", "DeepLabV3PlusHead"], "MODEL.SEM_SEG_HEAD.NAME"),
    (RCNN, ["INPUT.FORMAT", "YUV-BT.601"], "INPUT.FORMAT"),
    (RCNN, ["INPUT.FORMAT", "L"], "INPUT.FORMAT"),
    (RCNN, ["MODEL.LOAD_PROPOSALS", "true"], "MODEL.LOAD_PROPOSALS"),
    (RCNN, ["TEST.AUG.ENABLED", "true"], "TEST.AUG.ENABLED"),
    (RCNN, ["INPUT.MIN_SIZE_TEST", "0"], "INPUT.MIN_SIZE_TEST"),
    (RCNN, ["INPUT.MAX_SIZE_TEST", "-1"], "INPUT.MAX_SIZE_TEST"),
    (RCNN, ["MODEL.PIXEL_MEAN", "[128.0]"], "MODEL.PIXEL_MEAN"),
    (RCNN, ["MODEL.PIXEL_STD", "[1.0, 1.0, 1.0, 1.0]"], "MODEL.PIXEL_STD"),
    (RCNN, ["MODEL.PIXEL_STD", "[1.0, 0.0, 1.0]"], "MODEL.PIXEL_STD"),
    (RCNN, ["MODEL.PIXEL_MEAN", "[.nan, 1.0, 1.0]"], "MODEL.PIXEL_MEAN"),
]


@pytest.mark.parametrize(("model", "opts", "key"), UNSUPPORTED)
def test_unsupported_setting_names_its_key(model: str, opts: list[str], key: str) -> None:
    path = fixture_config_path(model)
    cfg = load_config(path, opts)
    with pytest.raises(ConfigError) as info:
        check_supported(cfg)
    assert info.value.key == key
    assert info.value.file == str(path)
    assert key in str(info.value)
    assert "supported" in str(info.value) or "must" in str(info.value)


def test_message_lists_the_supported_values() -> None:
    cfg = load_config(fixture_config_path(RCNN), ["MODEL.RESNETS.NORM", "LN"])
    with pytest.raises(ConfigError) as info:
        check_supported(cfg)
    for norm in NORMS:
        assert repr(norm) in str(info.value)
    assert "'LN'" in str(info.value)


def test_other_violations_are_named_too() -> None:
    opts = ["INPUT.FORMAT", "L", "TEST.AUG.ENABLED", "true", "MODEL.FPN.FUSE_TYPE", "max"]
    with pytest.raises(ConfigError) as info:
        check_supported(load_config(fixture_config_path(RCNN), opts))
    assert info.value.key == "MODEL.FPN.FUSE_TYPE"
    others = str(info.value).split("also unsupported:")[1]
    assert "INPUT.FORMAT" in others and "TEST.AUG.ENABLED" in others


# (fixture model, opts) that the exporter supports although they differ from the fixtures
SUPPORTED_VARIANTS = [
    (RCNN, ["MODEL.RESNETS.DEPTH", "18", "MODEL.RESNETS.RES2_OUT_CHANNELS", "64"]),
    (RCNN, ["MODEL.RESNETS.DEPTH", "101"]),
    (RCNN, ["MODEL.RESNETS.DEPTH", "152", "MODEL.RESNETS.NORM", "FrozenBN"]),
    (RCNN, ["MODEL.FPN.FUSE_TYPE", "avg", "MODEL.FPN.NORM", "GN"]),
    (RCNN, ["MODEL.ROI_BOX_HEAD.POOLER_TYPE", "ROIAlign"]),
    (RCNN, ["MODEL.ROI_HEADS.NAME", "CascadeROIHeads"]),
    (RCNN, ["MODEL.RESNETS.NORM", "SyncBN", "MODEL.ROI_BOX_HEAD.NORM", "naiveSyncBN"]),
    (RCNN, ["INPUT.FORMAT", "RGB"]),
    (RCNN, ["MODEL.ROI_BOX_HEAD.BBOX_REG_LOSS_TYPE", "giou"]),
    # Unused parts are not checked: mask head settings when MASK_ON is false, ROI heads for
    # RetinaNet, the box head name for Res5ROIHeads.
    (RCNN, ["MODEL.MASK_ON", "false", "MODEL.ROI_MASK_HEAD.NAME", "Other"]),
    (RETINANET, ["MODEL.ROI_HEADS.NAME", "Other", "MODEL.RPN.HEAD_NAME", "Other"]),
    (C4, ["MODEL.ROI_BOX_HEAD.NAME", "FastRCNNConvFCHead"]),
    (C4, ["MODEL.ROI_BOX_HEAD.NAME", ""]),
]


@pytest.mark.parametrize(("model", "opts"), SUPPORTED_VARIANTS)
def test_supported_variants_pass(model: str, opts: list[str]) -> None:
    check_supported(load_config(fixture_config_path(model), opts))


@pytest.mark.parametrize("model", FIXTURE_MODELS)
def test_every_fixture_is_supported(model: str) -> None:
    check_supported(load_config(fixture_config_path(model)))


def test_hand_built_config_missing_keys_is_refused() -> None:
    cfg = load_config(fixture_config_path(RCNN)).to_dict()
    del cfg["INPUT"]["FORMAT"]
    with pytest.raises(ConfigError, match="load_config") as info:
        check_supported(Config(cfg))
    assert info.value.key == "INPUT.FORMAT"
