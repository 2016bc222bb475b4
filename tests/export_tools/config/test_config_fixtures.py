"""Every golden fixture config.yaml loads, is supported, and reads back exactly as written."""

from __future__ import annotations

import pytest
import yaml
from cfg_helpers import FIXTURE_MODELS, FIXTURES_DIR, fixture_config_path, flatten

from export_tools.config import Config, load_config
from export_tools.config.defaults import DEFAULTS
from export_tools.modeling.supported import check_supported


def test_fixture_list_matches_the_fixture_folder() -> None:
    if not FIXTURES_DIR.is_dir():
        pytest.fail(f"golden fixtures folder {FIXTURES_DIR} is missing")
    found = {p.parent.name for p in FIXTURES_DIR.glob("*/config.yaml")}
    assert found == set(FIXTURE_MODELS)


@pytest.mark.parametrize("model", FIXTURE_MODELS)
def test_fixture_loads_and_is_supported(model: str) -> None:
    path = fixture_config_path(model)
    cfg = load_config(path)
    assert isinstance(cfg, Config)
    assert cfg.source == str(path)
    check_supported(cfg)
    assert cfg.MODEL.WEIGHTS == "model_final.pth"


@pytest.mark.parametrize("model", FIXTURE_MODELS)
def test_fixture_values_equal_the_raw_yaml(model: str) -> None:
    path = fixture_config_path(model)
    raw = flatten(yaml.safe_load(path.read_text(encoding="utf-8")))
    cfg = load_config(path)
    loaded = flatten(cfg.to_dict())
    assert loaded.keys() == raw.keys()
    for key, value in raw.items():
        assert loaded[key] == value, key
        assert type(loaded[key]) is type(value), key
        assert cfg.get(key) == value, key


@pytest.mark.parametrize("model", FIXTURE_MODELS)
def test_defaults_table_has_exactly_the_fixture_keys(model: str) -> None:
    raw = flatten(yaml.safe_load(fixture_config_path(model).read_text(encoding="utf-8")))
    table = flatten(DEFAULTS)
    assert sorted(set(raw) - set(table)) == [], "fixture keys missing from the defaults table"
    assert sorted(set(table) - set(raw)) == [], "table keys that a Detectron2 dump lacks"


@pytest.mark.parametrize("model", FIXTURE_MODELS)
def test_fixture_dump_round_trips(model: str, tmp_path) -> None:
    cfg = load_config(fixture_config_path(model))
    dumped = tmp_path / "dumped.yaml"
    dumped.write_text(cfg.dump(), encoding="utf-8")
    again = load_config(dumped)
    assert again == cfg
    assert again.to_dict() == cfg.to_dict()


def test_fixture_architectures_are_read() -> None:
    archs = {m: load_config(fixture_config_path(m)).MODEL.META_ARCHITECTURE for m in FIXTURE_MODELS}
    assert archs["retinanet_R_50_FPN"] == "RetinaNet"
    assert archs["panoptic_fpn_R_50"] == "PanopticFPN"
    assert archs["mask_rcnn_R_50_C4"] == "GeneralizedRCNN"
    c4 = load_config(fixture_config_path("mask_rcnn_R_50_C4"))
    assert c4.MODEL.ROI_HEADS.NAME == "Res5ROIHeads"
    assert c4.MODEL.ANCHOR_GENERATOR.SIZES == [[32, 64, 128, 256, 512]]
    fpn = load_config(fixture_config_path("mask_rcnn_R_50_FPN"))
    assert fpn.MODEL.ANCHOR_GENERATOR.SIZES == [[32], [64], [128], [256], [512]]
    rgb = load_config(fixture_config_path("faster_rcnn_X_FPN_gn_rgb"))
    assert rgb.INPUT.FORMAT == "RGB"
    assert rgb.MODEL.PIXEL_STD == [58.395, 57.12, 57.375]
