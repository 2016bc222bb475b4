"""Keys a file leaves out take Detectron2's defaults; the Config object behaves as documented."""

from __future__ import annotations

import copy
import pickle

import pytest
import yaml

from export_tools.config import Config, load_config

# (dotted key, Detectron2 default) for well-known settings a short config leaves out.
DEFAULT_SPOT_CHECKS = [
    ("VERSION", 2),
    ("MODEL.META_ARCHITECTURE", "GeneralizedRCNN"),
    ("MODEL.DEVICE", "cuda"),
    ("MODEL.PIXEL_MEAN", [103.53, 116.28, 123.675]),
    ("MODEL.PIXEL_STD", [1.0, 1.0, 1.0]),
    ("MODEL.BACKBONE.NAME", "build_resnet_backbone"),
    ("MODEL.BACKBONE.FREEZE_AT", 2),
    ("MODEL.RESNETS.DEPTH", 50),
    ("MODEL.RESNETS.NORM", "FrozenBN"),
    ("MODEL.RESNETS.OUT_FEATURES", ["res4"]),
    ("MODEL.RESNETS.STRIDE_IN_1X1", True),
    ("MODEL.RESNETS.DEFORM_ON_PER_STAGE", [False, False, False, False]),
    ("MODEL.FPN.FUSE_TYPE", "sum"),
    ("MODEL.FPN.OUT_CHANNELS", 256),
    ("MODEL.FPN.IN_FEATURES", []),
    ("MODEL.ANCHOR_GENERATOR.SIZES", [[32, 64, 128, 256, 512]]),
    ("MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS", [[0.5, 1.0, 2.0]]),
    ("MODEL.ANCHOR_GENERATOR.OFFSET", 0.0),
    ("MODEL.RPN.NMS_THRESH", 0.7),
    ("MODEL.RPN.PRE_NMS_TOPK_TEST", 6000),
    ("MODEL.RPN.POST_NMS_TOPK_TEST", 1000),
    ("MODEL.RPN.BBOX_REG_WEIGHTS", [1.0, 1.0, 1.0, 1.0]),
    ("MODEL.RPN.IN_FEATURES", ["res4"]),
    ("MODEL.ROI_HEADS.NAME", "Res5ROIHeads"),
    ("MODEL.ROI_HEADS.NUM_CLASSES", 80),
    ("MODEL.ROI_HEADS.SCORE_THRESH_TEST", 0.05),
    ("MODEL.ROI_HEADS.NMS_THRESH_TEST", 0.5),
    ("MODEL.ROI_BOX_HEAD.BBOX_REG_WEIGHTS", [10.0, 10.0, 5.0, 5.0]),
    ("MODEL.ROI_BOX_HEAD.POOLER_TYPE", "ROIAlignV2"),
    ("MODEL.ROI_BOX_HEAD.FC_DIM", 1024),
    ("MODEL.ROI_BOX_HEAD.FED_LOSS_NUM_CLASSES", 50),
    ("MODEL.ROI_BOX_HEAD.USE_SIGMOID_CE", False),
    ("MODEL.ROI_BOX_CASCADE_HEAD.IOUS", [0.5, 0.6, 0.7]),
    ("MODEL.ROI_MASK_HEAD.POOLER_RESOLUTION", 14),
    ("MODEL.ROI_KEYPOINT_HEAD.CONV_DIMS", [512] * 8),
    ("MODEL.ROI_KEYPOINT_HEAD.NUM_KEYPOINTS", 17),
    ("MODEL.SEM_SEG_HEAD.NORM", "GN"),
    ("MODEL.PANOPTIC_FPN.COMBINE.STUFF_AREA_LIMIT", 4096),
    ("MODEL.PANOPTIC_FPN.COMBINE.INSTANCES_CONFIDENCE_THRESH", 0.5),
    ("MODEL.RETINANET.SCORE_THRESH_TEST", 0.05),
    ("MODEL.RETINANET.TOPK_CANDIDATES_TEST", 1000),
    ("MODEL.RETINANET.PRIOR_PROB", 0.01),
    ("INPUT.MIN_SIZE_TEST", 800),
    ("INPUT.MAX_SIZE_TEST", 1333),
    ("INPUT.MIN_SIZE_TRAIN", [800]),
    ("INPUT.FORMAT", "BGR"),
    ("INPUT.MASK_FORMAT", "polygon"),
    ("DATALOADER.REPEAT_SQRT", True),
    ("SOLVER.NUM_DECAYS", 3),
    ("SOLVER.RESCALE_INTERVAL", False),
    ("SOLVER.BASE_LR_END", 0.0),
    ("SOLVER.WEIGHT_DECAY_BIAS", None),
    ("SOLVER.STEPS", [30000]),
    ("TEST.DETECTIONS_PER_IMAGE", 100),
    ("TEST.AUG.ENABLED", False),
    ("FLOAT32_PRECISION", ""),
    ("GLOBAL.HACK", 1.0),
]


@pytest.fixture
def short_cfg(write_yaml) -> Config:
    return load_config(write_yaml({"MODEL": {"MASK_ON": True}, "VERSION": 2}))


@pytest.mark.parametrize(("key", "expected"), DEFAULT_SPOT_CHECKS)
def test_left_out_keys_take_the_default(short_cfg: Config, key: str, expected) -> None:
    value = short_cfg.get(key)
    assert value == expected
    assert type(value) is type(expected)


def test_file_value_replaces_the_default(short_cfg: Config) -> None:
    assert short_cfg.MODEL.MASK_ON is True


def test_missing_version_is_taken_as_current(write_yaml) -> None:
    cfg = load_config(write_yaml({"MODEL": {"RESNETS": {"DEPTH": 101}}}))
    assert cfg.VERSION == 2
    assert cfg.MODEL.RESNETS.DEPTH == 101


def test_access_styles_agree(short_cfg: Config) -> None:
    assert short_cfg.MODEL.FPN.FUSE_TYPE == "sum"
    assert short_cfg["MODEL"]["FPN"]["FUSE_TYPE"] == "sum"
    assert short_cfg["MODEL.FPN.FUSE_TYPE"] == "sum"
    assert short_cfg.get("MODEL.FPN.NORM") == ""
    assert short_cfg.MODEL.get("FPN.NORM") == ""
    assert "MODEL.FPN.NORM" in short_cfg
    assert "MODEL.FPN.NOPE" not in short_cfg
    assert short_cfg.get("MODEL.FPN.NOPE", "fallback") == "fallback"
    assert short_cfg.get("MODEL.FPN.NORM.DEEPER") is None
    assert isinstance(short_cfg.MODEL, Config)
    assert "DEPTH" in dir(short_cfg.MODEL.RESNETS)
    assert len(short_cfg) == len(short_cfg.to_dict())


def test_missing_keys_raise_with_the_dotted_path(short_cfg: Config) -> None:
    with pytest.raises(AttributeError, match=r"MODEL\.RPN\.NMS_THRES\b"):
        _ = short_cfg.MODEL.RPN.NMS_THRES
    with pytest.raises(KeyError, match=r"MODEL\.NOPE"):
        _ = short_cfg["MODEL"]["NOPE"]
    assert not hasattr(short_cfg, "NOPE")


def test_config_is_read_only(short_cfg: Config) -> None:
    with pytest.raises(AttributeError, match="read-only"):
        short_cfg.MODEL.MASK_ON = False  # type: ignore[misc]
    with pytest.raises(AttributeError, match="read-only"):
        del short_cfg.MODEL
    with pytest.raises(TypeError):
        short_cfg["MODEL"] = {}  # type: ignore[index]
    sizes = short_cfg.MODEL.ANCHOR_GENERATOR.SIZES
    sizes[0].append(1024)
    sizes.append([1])
    assert short_cfg.MODEL.ANCHOR_GENERATOR.SIZES == [[32, 64, 128, 256, 512]]
    plain = short_cfg.to_dict()
    plain["MODEL"]["MASK_ON"] = False
    assert short_cfg.MODEL.MASK_ON is True


def test_lists_stay_lists_and_numbers_keep_their_types(short_cfg: Config) -> None:
    assert isinstance(short_cfg.MODEL.ANCHOR_GENERATOR.SIZES, list)
    assert isinstance(short_cfg.MODEL.ANCHOR_GENERATOR.SIZES[0], list)
    assert isinstance(short_cfg.to_dict()["MODEL"]["ROI_BOX_CASCADE_HEAD"]["IOUS"], list)
    assert type(short_cfg.INPUT.MIN_SIZE_TEST) is int
    assert type(short_cfg.MODEL.RPN.NMS_THRESH) is float


def test_dump_is_yaml_of_to_dict(short_cfg: Config) -> None:
    text = short_cfg.dump()
    assert "&id" not in text
    assert yaml.safe_load(text) == short_cfg.to_dict()


def test_copy_and_pickle_keep_an_equal_config(short_cfg: Config) -> None:
    assert copy.deepcopy(short_cfg) == short_cfg
    restored = pickle.loads(pickle.dumps(short_cfg))
    assert restored == short_cfg
    assert restored.source == short_cfg.source
    with pytest.raises(AttributeError, match=r"MODEL\.NOPE"):
        _ = pickle.loads(pickle.dumps(short_cfg.MODEL)).NOPE


def test_config_from_a_mapping_compares_with_dicts() -> None:
    cfg = Config({"A": {"B": [1, [2, 3]], "C": "x"}})
    assert cfg == {"A": {"B": [1, [2, 3]], "C": "x"}}
    assert cfg.A.B == [1, [2, 3]]
    assert cfg.source is None
    with pytest.raises(TypeError, match="strings"):
        Config({1: 2})  # type: ignore[dict-item]
