"""``opts`` overrides, as Detectron2's ``--opts KEY VALUE ...``: parsed, checked, applied last."""

from __future__ import annotations

from pathlib import Path

import pytest
from cfg_helpers import fixture_config_path

from export_tools.config import ConfigError, load_config


@pytest.fixture
def fixture_path() -> Path:
    return fixture_config_path("mask_rcnn_R_50_FPN")


# (KEY, VALUE text, value after loading)
OPTS_CASES = [
    ("MODEL.ROI_HEADS.SCORE_THRESH_TEST", "0.5", 0.5),
    ("MODEL.ROI_HEADS.SCORE_THRESH_TEST", "1", 1.0),
    ("INPUT.FORMAT", "RGB", "RGB"),
    ("INPUT.MIN_SIZE_TEST", "640", 640),
    ("MODEL.PIXEL_STD", "[57.375, 57.12, 58.395]", [57.375, 57.12, 58.395]),
    ("MODEL.ANCHOR_GENERATOR.SIZES", "[[16], [32], [64], [128], [256]]",
     [[16], [32], [64], [128], [256]]),
    ("SOLVER.STEPS", "(100, 200)", [100, 200]),
    ("DATASETS.TEST", "('coco_2017_val',)", ["coco_2017_val"]),
    ("MODEL.MASK_ON", "False", False),
    ("MODEL.MASK_ON", "false", False),
    ("MODEL.FPN.NORM", "", ""),
    ("MODEL.FPN.NORM", "GN", "GN"),
    ("MODEL.WEIGHTS", "/models/model final.pth", "/models/model final.pth"),
    ("SOLVER.WEIGHT_DECAY_BIAS", "None", None),
    ("SOLVER.WEIGHT_DECAY_BIAS", "0.0", 0.0),
    ("SOLVER.BASE_LR", "1e-4", 0.0001),
]


@pytest.mark.parametrize(("key", "text", "expected"), OPTS_CASES)
def test_opt_is_parsed_and_applied(fixture_path: Path, key: str, text: str, expected) -> None:
    cfg = load_config(fixture_path, [key, text])
    assert cfg.get(key) == expected
    assert type(cfg.get(key)) is type(expected)


def test_opts_override_the_file_and_leave_the_rest(fixture_path: Path) -> None:
    plain = load_config(fixture_path)
    cfg = load_config(fixture_path, ["MODEL.RPN.NMS_THRESH", "0.6", "INPUT.FORMAT", "RGB"])
    assert plain.MODEL.RPN.NMS_THRESH == 0.7
    assert cfg.MODEL.RPN.NMS_THRESH == 0.6
    assert cfg.INPUT.FORMAT == "RGB"
    changed = {"MODEL": {"RPN": {"NMS_THRESH": 0.6}}, "INPUT": {"FORMAT": "RGB"}}
    expected = plain.to_dict()
    expected["MODEL"]["RPN"].update(changed["MODEL"]["RPN"])
    expected["INPUT"].update(changed["INPUT"])
    assert cfg.to_dict() == expected


def test_later_opt_wins(fixture_path: Path) -> None:
    cfg = load_config(fixture_path, ["INPUT.MIN_SIZE_TEST", "300", "INPUT.MIN_SIZE_TEST", "320"])
    assert cfg.INPUT.MIN_SIZE_TEST == 320


def test_section_can_be_given_as_a_mapping(fixture_path: Path) -> None:
    cfg = load_config(fixture_path, ["MODEL.RPN", "{NMS_THRESH: 0.6, PRE_NMS_TOPK_TEST: 500}"])
    assert cfg.MODEL.RPN.NMS_THRESH == 0.6
    assert cfg.MODEL.RPN.PRE_NMS_TOPK_TEST == 500
    assert cfg.MODEL.RPN.POST_NMS_TOPK_TEST == 1000


def test_empty_opts_change_nothing(fixture_path: Path) -> None:
    assert load_config(fixture_path, []) == load_config(fixture_path)


# (opts, key the error names, words in the message)
BAD_OPTS = [
    (["INPUT.FORMAT"], "INPUT.FORMAT", "odd count"),
    (["INPUT.FORMAT", "RGB", "MODEL.MASK_ON"], "MODEL.MASK_ON", "odd count"),
    (["MODEL.RPN.NMS_THRES", "0.5"], "MODEL.RPN.NMS_THRES", "did you mean MODEL.RPN.NMS_THRESH"),
    (["MODEL.FOO.BAR", "1"], "MODEL.FOO", "unknown config key MODEL.FOO"),
    (["MODEL.RESNETS.DEPTH", "50.5"], "MODEL.RESNETS.DEPTH", "expected int, got float"),
    (["MODEL.RESNETS.DEPTH", "fifty"], "MODEL.RESNETS.DEPTH", "expected int, got str"),
    (["INPUT.FORMAT", "3"], "INPUT.FORMAT", "expected str, got int"),
    (["MODEL.MASK_ON", "maybe"], "MODEL.MASK_ON", "expected bool"),
    (["MODEL.PIXEL_MEAN", "[1, 2"], "MODEL.PIXEL_MEAN", "not valid YAML"),
    (["MODEL", "1"], "MODEL", "section"),
    (["MODEL..MASK_ON", "true"], "MODEL..MASK_ON", "malformed"),
    (["", "true"], "", "malformed"),
    (["VERSION", "1"], "VERSION", "VERSION 1"),
    (["INPUT.FORMAT", "!!python/object/apply:os.system ['true']"], "INPUT.FORMAT", "tag"),
]


@pytest.mark.parametrize(("opts", "key", "words"), BAD_OPTS)
def test_bad_opts_are_refused(fixture_path: Path, opts: list[str], key: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(fixture_path, opts)
    assert (info.value.key or "") == key
    assert words in str(info.value)


@pytest.mark.parametrize("opts", [[1, "2"], ["MODEL.MASK_ON", True], "MODEL.MASK_ON true"])
def test_opts_must_be_a_list_of_strings(fixture_path: Path, opts) -> None:
    with pytest.raises(ConfigError, match="opts"):
        load_config(fixture_path, opts)
