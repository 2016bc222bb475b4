"""The zoo catalog: official entries, user catalogs, name lookup, configs, and its generator."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
import yaml

from export_tools.config import load_config
from export_tools.modeling.supported import check_supported
from export_tools.zoo.catalog import DEFAULT_BASE_URL, ZooError, all_entries, get_entry
from export_tools.zoo.generate_catalog import generate

OFFICIAL = all_entries()
YAML_ENTRIES = sorted(n for n, e in OFFICIAL.items() if not e.is_lazy)


def test_official_entries_cover_the_supported_architectures():
    names = set(OFFICIAL)
    for expected in (
        "COCO-Detection/faster_rcnn_R_50_C4_1x", "COCO-Detection/faster_rcnn_X_101_32x8d_FPN_3x",
        "COCO-Detection/retinanet_R_101_FPN_3x", "COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x",
        "COCO-InstanceSegmentation/mask_rcnn_R_101_DC5_3x",
        "COCO-Keypoints/keypoint_rcnn_R_50_FPN_3x",
        "COCO-PanopticSegmentation/panoptic_fpn_R_101_3x", "Misc/cascade_mask_rcnn_R_50_FPN_3x",
        "Misc/mask_rcnn_R_50_FPN_3x_gn", "LVISv0.5-InstanceSegmentation/mask_rcnn_R_50_FPN_1x",
    ):
        assert expected in names
    assert not any("dconv" in n or "/rpn_" in n or "fast_rcnn_" in n for n in names)


@pytest.mark.parametrize("name", YAML_ENTRIES)
def test_every_official_entry_is_a_supported_config(name, tmp_path):
    config = OFFICIAL[name].write_config(tmp_path / "config.yaml", tmp_path / "w.pkl")
    cfg = load_config(config)
    check_supported(cfg)
    for key, value in OFFICIAL[name].overrides.items():
        assert cfg.get(key) == (tuple(value) if isinstance(cfg.get(key), tuple) else value), key


@pytest.mark.parametrize("name", YAML_ENTRIES)
def test_every_official_entry_is_consistent(name):
    entry = OFFICIAL[name]
    assert re.fullmatch(r"\d+/model_final_[0-9a-f]{6}\.pkl", entry.weights)
    assert entry.url() == f"{DEFAULT_BASE_URL}{name}/{entry.weights}"
    assert entry.md5_prefix == entry.weights[-10:-4] and entry.sha256 is None
    tree = entry.config_tree("/w.pkl")
    assert tree["MODEL"]["WEIGHTS"] == "/w.pkl"
    assert all(k.split(".")[0] in {"MODEL", "INPUT", "TEST"} for k in entry.overrides)
    num_classes = entry.overrides.get("MODEL.ROI_HEADS.NUM_CLASSES", 80)
    names = entry.info.thing_classes
    assert names is None if entry.dataset == "lvis_v0.5" else len(names) == num_classes
    if entry.overrides.get("MODEL.KEYPOINT_ON"):
        assert len(entry.info.keypoint_names) == 17


def test_key_facts_of_some_entries():
    retina = OFFICIAL["COCO-Detection/retinanet_R_50_FPN_3x"].overrides
    assert retina["MODEL.META_ARCHITECTURE"] == "RetinaNet"
    assert retina["MODEL.ANCHOR_GENERATOR.SIZES"][0] == pytest.approx([32, 32 * 2 ** (1 / 3),
                                                                      32 * 2 ** (2 / 3)])
    x101 = OFFICIAL["COCO-Detection/faster_rcnn_X_101_32x8d_FPN_3x"].overrides
    assert (x101["MODEL.RESNETS.NUM_GROUPS"], x101["MODEL.RESNETS.WIDTH_PER_GROUP"]) == (32, 8)
    assert x101["MODEL.PIXEL_STD"] == [57.375, 57.12, 58.395]
    c4 = OFFICIAL["COCO-InstanceSegmentation/mask_rcnn_R_50_C4_3x"].overrides
    assert c4 == {"MODEL.MASK_ON": True}  # everything else is Detectron2's default (C4)
    lvis = OFFICIAL["LVISv0.5-InstanceSegmentation/mask_rcnn_R_50_FPN_1x"].overrides
    assert lvis["TEST.DETECTIONS_PER_IMAGE"] == 300 and lvis["MODEL.ROI_HEADS.NUM_CLASSES"] == 1230
    city = OFFICIAL["Cityscapes/mask_rcnn_R_50_FPN"].overrides
    assert (city["INPUT.MIN_SIZE_TEST"], city["INPUT.MAX_SIZE_TEST"]) == (1024, 2048)


def test_names_are_accepted_in_several_spellings():
    ref = get_entry("COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x")
    for alias in ("configs/COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml",
                  "zoo:COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x"):
        assert get_entry(alias) == ref


def test_unknown_name_suggests_close_ones():
    hint = "did you mean COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x"
    with pytest.raises(ZooError, match=hint):
        get_entry("mask_rcnn_R_50_FPN_3x")


def test_base_url_override(monkeypatch):
    entry = get_entry("COCO-Detection/faster_rcnn_R_50_FPN_3x")
    monkeypatch.setenv("D2STREAM_ZOO_URL", "http://127.0.0.1:9/mirror/")
    assert entry.url() == f"http://127.0.0.1:9/mirror/{entry.name}/{entry.weights}"
    assert entry.url("http://other/") == f"http://other/{entry.name}/{entry.weights}"


def test_user_catalog_adds_entries(tmp_path, monkeypatch):
    cat = tmp_path / "cat.yaml"
    cat.write_text(textwrap.dedent("""
        shop/widgets:
          weights: https://example.invalid/w/model_final_0a1b2c.pth
          class_names: [bolt, nut]
          sha256: "%s"
          overrides:
            MODEL: {ROI_HEADS: {NUM_CLASSES: 2}, MASK_ON: true}
    """ % ("ab" * 32)))
    monkeypatch.setenv("D2STREAM_ZOO_CATALOG", str(cat))
    entry = get_entry("shop/widgets")
    assert entry.url() == "https://example.invalid/w/model_final_0a1b2c.pth"
    assert entry.info.thing_classes == ("bolt", "nut") and entry.md5_prefix == "0a1b2c"
    assert entry.overrides == {"MODEL.ROI_HEADS.NUM_CLASSES": 2, "MODEL.MASK_ON": True}
    written = entry.write_config(tmp_path / "c" / "config.yaml", "/w.pth")
    assert yaml.safe_load(written.read_text()) == {
        "MODEL": {"MASK_ON": True, "ROI_HEADS": {"NUM_CLASSES": 2}, "WEIGHTS": "/w.pth"}}
    assert entry.cache_relpath() == Path("shop/widgets/w/model_final_0a1b2c.pth")


@pytest.mark.parametrize("body, message", [
    ("x: {dataset: coco}", "needs at least a 'weights'"),
    ("x: {weights: a.pkl, dataset: nope}", "unknown dataset 'nope'"),
    ("x: {weights: a.pkl, sha256: abc}", "64 hex digits"),
    ("[1, 2]", "must map names"),
])
def test_invalid_user_catalog_names_the_problem(tmp_path, monkeypatch, body, message):
    cat = tmp_path / "cat.yaml"
    cat.write_text(body)
    monkeypatch.setenv("D2STREAM_ZOO_CATALOG", str(cat))
    with pytest.raises(ZooError, match=message) as err:
        all_entries()
    assert str(cat) in str(err.value)


def test_generator_keeps_only_non_default_inference_keys(tmp_path):
    (tmp_path / "detectron2/config").mkdir(parents=True)
    (tmp_path / "detectron2/model_zoo").mkdir(parents=True)
    (tmp_path / "configs/Fam").mkdir(parents=True)
    (tmp_path / "detectron2/config/defaults.py").write_text(textwrap.dedent("""
        _C = CN()
        _C.MODEL = CN()
        _C.MODEL.WEIGHTS = ""
        _C.MODEL.MASK_ON = False
        _C.MODEL.ANCHOR_GENERATOR = CN()
        _C.MODEL.ANCHOR_GENERATOR.SIZES = [[32, 64, 128, 256, 512]]
        _C.MODEL.KP = CN()
        _C.MODEL.KP.CONV_DIMS = tuple(512 for _ in range(2))
        _C.INPUT = CN()
        _C.INPUT.MIN_SIZE_TRAIN = (800,)
        _C.INPUT.MIN_SIZE_TEST = 800
        _C.SOLVER = CN()
        _C.SOLVER.BASE_LR = 0.001
        _C.TEST = CN()
        _C.TEST.PRECISE_BN = CN({"ENABLED": False})
    """))
    (tmp_path / "detectron2/model_zoo/model_zoo.py").write_text(
        '"Fam/m_1x": "123/model_final_abcdef.pkl",\n')
    (tmp_path / "configs/Base.yaml").write_text(textwrap.dedent("""
        MODEL:
          MASK_ON: True
          ANCHOR_GENERATOR:
            SIZES: !!python/object/apply:eval ["[[x, x * 2] for x in [32, 64]]"]
        INPUT: {MIN_SIZE_TRAIN: (640, 800), MIN_SIZE_TEST: 800}
        SOLVER: {BASE_LR: 0.02}
    """))
    (tmp_path / "configs/Fam/m_1x.yaml").write_text(textwrap.dedent("""
        _BASE_: "../Base.yaml"
        MODEL: {WEIGHTS: "detectron2://x.pkl", KP: {CONV_DIMS: [512, 512]}}
        INPUT: {MIN_SIZE_TEST: 600}
        TEST: {PRECISE_BN: {ENABLED: True}}
    """))
    source = generate(tmp_path, {"Fam/m_1x": "coco"})
    namespace: dict = {}
    exec(compile(source, "catalog_data.py", "exec"), namespace)  # noqa: S102 - our own output
    assert namespace["ENTRIES"] == {"Fam/m_1x": {
        "weights": "123/model_final_abcdef.pkl", "dataset": "coco",
        "overrides": {"INPUT.MIN_SIZE_TEST": 600,
                      "MODEL.ANCHOR_GENERATOR.SIZES": [[32, 64], [64, 128]],
                      "MODEL.MASK_ON": True},
    }}
    assert max(len(line) for line in source.splitlines()) <= 100
