"""The LazyConfig zoo entries (new baselines, ViTDet, MViTv2): facts, configs, refusals, and
their generator."""

from __future__ import annotations

import re
import shutil
import textwrap
from pathlib import Path

import pytest

from export_tools.errors import ConfigError
from export_tools.lazy.markers import LambdaRef, NameRef, PartialValue
from export_tools.lazy.reader import read_lazy_yaml
from export_tools.lazy.translate import load_lazy_config
from export_tools.modeling.supported import check_supported
from export_tools.zoo.catalog import DEFAULT_BASE_URL, ZooError, all_entries, get_entry
from export_tools.zoo.catalog_lazy_data import CONFIGS
from export_tools.zoo.generate_lazy_catalog import generate
from export_tools.zoo.lazy_configs import apply_changes, config_tree, flatten_tree, inference_tree
from tests.conftest import require_fixtures

OFFICIAL = all_entries()
LAZY = sorted(n for n, e in OFFICIAL.items() if e.is_lazy)
HERE = Path(__file__).resolve().parent
TINY_CONFIGS = HERE.parent / "lazy" / "configs"


def test_the_lazyconfig_models_are_listed():
    for family in ("R_50", "R_101", "regnetx_4gf_dds", "regnety_4gf_dds"):
        for epochs in (100, 200, 400):
            assert f"new_baselines/mask_rcnn_{family}_FPN_{epochs}ep_LSJ" in LAZY
    for name in ("ViTDet/COCO/mask_rcnn_vitdet_b_100ep",
                 "ViTDet/COCO/cascade_mask_rcnn_vitdet_l_100ep",
                 "ViTDet/LVIS/mask_rcnn_vitdet_b_100ep", "MViTv2/mask_rcnn_mvitv2_t_3x",
                 "MViTv2/cascade_mask_rcnn_mvitv2_b_in21k_3x",
                 "ViTDet/COCO/cascade_mask_rcnn_swin_b_in21k_50ep"):
        assert name in LAZY
    assert len(LAZY) == 41  # 12 new baselines, 22 ViTDet (COCO, LVIS), 7 MViTv2


@pytest.mark.parametrize("name", LAZY)
def test_every_lazy_entry_is_consistent(name):
    entry = OFFICIAL[name]
    assert re.fullmatch(r"f?\d+/model_final_[0-9a-f]{6}\.pkl", entry.weights)
    assert entry.md5_prefix == entry.weights[-10:-4] and entry.sha256 is None
    folder = entry.url_dir or name
    assert entry.url() == f"{DEFAULT_BASE_URL}{folder}/{entry.weights}"
    if name.startswith("new_baselines/"):
        assert entry.url_dir is None
    else:  # the URL folder drops the schedule: ViTDet/COCO/mask_rcnn_vitdet_b/f325346929/...
        assert folder.split("/")[0] == name.split("/")[0] and not entry.overrides
    assert entry.dataset == ("lvis_v1" if "/LVIS/" in name else "coco")


@pytest.mark.parametrize("name", LAZY)
def test_every_lazy_entry_writes_a_config_the_exporter_reads(name, tmp_path):
    """The config.yaml a zoo export writes is read back by the LazyConfig reader; the exporter
    builds it, or refuses it with exactly the recorded reason (the size refusals of ViT-H and
    MViTv2-H come from building the graph, which the generator does and this test does not)."""
    entry = OFFICIAL[name]
    path = entry.write_config(tmp_path / "config.yaml", tmp_path / "w.pkl")
    if entry.refused and "2 GiB" not in entry.refused:
        with pytest.raises(ConfigError) as err:
            check_supported(load_lazy_config(path, {}))
        assert entry.refused in str(err.value)
        return
    cfg = load_lazy_config(path, {})
    check_supported(cfg)
    assert cfg.MODEL.ROI_HEADS.NUM_CLASSES == (1203 if entry.dataset == "lvis_v1" else 80)
    # ViTDet tests at its square 1024 input; the others at COCO's 800/1333, LSJ-trained or not
    square = name.startswith("ViTDet/")
    assert (cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST) == ((1024, 1024) if square else
                                                                  (800, 1333))
    names = entry.info.thing_classes
    assert names is None if entry.dataset == "lvis_v1" else len(names) == 80


def test_every_lazy_entry_is_exportable():
    """The H models (2.5-2.7 GiB) too: their weights are written as ONNX external data."""
    refused = {n: OFFICIAL[n].refused for n in LAZY if OFFICIAL[n].refused}
    assert refused == {}
    for name in ("ViTDet/COCO/mask_rcnn_vitdet_h_75ep",
                 "ViTDet/COCO/cascade_mask_rcnn_mvitv2_h_in21k_36ep",
                 "MViTv2/cascade_mask_rcnn_mvitv2_h_in21k_lsj_3x",
                 "MViTv2/cascade_mask_rcnn_mvitv2_t_3x",
                 "ViTDet/COCO/cascade_mask_rcnn_mvitv2_b_in21k_100ep",  # FPN with LN
                 "ViTDet/COCO/cascade_mask_rcnn_swin_b_in21k_50ep"):  # Swin
        assert name in LAZY


def test_key_facts_of_some_lazy_entries():
    r101 = OFFICIAL["new_baselines/mask_rcnn_R_101_FPN_200ep_LSJ"]
    assert r101.lazy_config["model"]["backbone"]["bottom_up"]["stages"]["depth"] == 101
    assert r101.lazy_config == OFFICIAL["new_baselines/mask_rcnn_R_101_FPN_100ep_LSJ"].lazy_config
    regnety = OFFICIAL["new_baselines/mask_rcnn_regnety_4gf_dds_FPN_100ep_LSJ"]
    up = regnety.lazy_config["model"]["backbone"]["bottom_up"]
    assert (up["w_a"], up["w_0"], up["w_m"], up["depth"], up["group_width"], up["se_ratio"]) == (
        31.41, 96, 2.24, 22, 64, 0.25)
    assert regnety.weights == "42047784/model_final_6ba57e.pkl"
    vit_l = OFFICIAL["ViTDet/COCO/mask_rcnn_vitdet_l_100ep"]
    net = vit_l.lazy_config["model"]["backbone"]["net"]
    assert (net["embed_dim"], net["depth"], net["num_heads"]) == (1024, 24, 16)
    assert [i for i in range(24) if i not in net["window_block_indexes"]] == [5, 11, 17, 23]
    assert vit_l.url() == (DEFAULT_BASE_URL +
                           "ViTDet/COCO/mask_rcnn_vitdet_l/f325599698/model_final_6146ed.pkl")
    lvis = OFFICIAL["ViTDet/LVIS/mask_rcnn_vitdet_b_100ep"].lazy_config["model"]["roi_heads"]
    assert lvis["num_classes"] == 1203 and lvis["box_predictor"]["use_sigmoid_ce"] is True
    mvit_b21k = OFFICIAL["MViTv2/cascade_mask_rcnn_mvitv2_b_in21k_3x"]
    assert mvit_b21k.url_dir == "MViTv2/cascade_mask_rcnn_mvitv2_b_in12k_3x"  # as published
    heads = mvit_b21k.lazy_config["model"]["roi_heads"]
    assert len(heads["box_heads"]) == 3 and heads["_target_"].endswith("CascadeROIHeads")


def test_lazy_names_in_several_spellings():
    ref = get_entry("ViTDet/COCO/mask_rcnn_vitdet_b_100ep")
    for alias in ("projects/ViTDet/configs/COCO/mask_rcnn_vitdet_b_100ep.py",
                  "zoo:ViTDet/COCO/mask_rcnn_vitdet_b_100ep"):
        assert get_entry(alias) == ref
    assert get_entry("configs/new_baselines/mask_rcnn_R_50_FPN_100ep_LSJ.py").is_lazy


def test_stored_configs_rebuild_from_base_and_changes():
    for key, stored in CONFIGS.items():
        tree = config_tree(key, CONFIGS)
        assert set(tree) == {"model", "dataloader"}
        if "base" in stored:
            base = config_tree(stored["base"], CONFIGS)
            changed = {k for k, v in flatten_tree(tree).items() if flatten_tree(base).get(k) != v}
            assert changed == set(stored["changes"])
    tree = {"a": {"b": 1}, "l": [{"c": 2}, {"c": 3}], "v": [1, 2]}
    assert flatten_tree(tree) == {"a.b": 1, "l.0.c": 2, "l.1.c": 3, "v": [1, 2]}
    assert apply_changes(tree, {"l.1.c": 4, "a.d.e": 5, "v": [3]}) == {
        "a": {"b": 1, "d": {"e": 5}}, "l": [{"c": 2}, {"c": 4}], "v": [3]}
    assert tree["l"][1]["c"] == 3  # a copy is changed


def test_user_catalog_lazy_entries(tmp_path, monkeypatch):
    fixture = require_fixtures() / "lazy" / "mask_rcnn_R_50_FPN_100ep_LSJ" / "config.yaml"
    shutil.copyfile(fixture, tmp_path / "trained.yaml")
    cat = tmp_path / "cat.yaml"
    cat.write_text(textwrap.dedent("""
        mirror/regnety:
          weights: 7/model_final_0a1b2c.pkl
          lazy_config: new_baselines/mask_rcnn_regnety_4gf_dds_FPN_100ep_LSJ
        lab/shapes:
          weights: https://example.invalid/w/model_final.pth
          class_names: [square, circle, triangle]
          lazy_config: trained.yaml
    """))
    monkeypatch.setenv("D2STREAM_ZOO_CATALOG", str(cat))
    mirror = get_entry("mirror/regnety")
    official = get_entry("new_baselines/mask_rcnn_regnety_4gf_dds_FPN_100ep_LSJ")
    assert mirror.lazy_config == official.lazy_config and mirror.md5_prefix == "0a1b2c"
    lab = get_entry("lab/shapes")
    assert set(lab.lazy_config) == {"model", "dataloader"}  # training sections dropped
    assert lab.lazy_config["model"]["roi_heads"]["num_classes"] == 3
    cat.write_text("x: {weights: a.pkl, lazy_config: nowhere.yaml}")
    with pytest.raises(ZooError, match="neither a LazyConfig zoo entry nor a file"):
        all_entries()
    cat.write_text("x: {weights: a.pkl, lazy_config: trained.yaml, overrides: {MODEL: {A: 1}}}")
    with pytest.raises(ZooError, match="either overrides"):
        all_entries()


def _mini_checkout(root: Path) -> Path:
    """A Detectron2-shaped folder: our tiny LSJ config as a new baseline and a ViTDet project."""
    shutil.copytree(TINY_CONFIGS, root / "configs")
    (root / "detectron2/model_zoo").mkdir(parents=True)
    (root / "detectron2/model_zoo/model_zoo.py").write_text(
        '"new_baselines/tiny_mask_rcnn_LSJ": "123/model_final_abcdef.pkl",\n'
        '"COCO-Detection/x_1x": "9/model_final_000000.pkl",\n')
    coco = root / "projects/ViTDet/configs/COCO"
    coco.mkdir(parents=True)
    (coco / "tiny_200ep.py").write_text(textwrap.dedent("""
        from detectron2 import model_zoo
        cfg = model_zoo.get_config("new_baselines/tiny_mask_rcnn_LSJ.py")
        model = cfg.model
        dataloader = cfg.dataloader
        train = dict(max_iter=10)
        train.max_iter *= 2
    """))
    (coco / "tiny_wide.py").write_text(textwrap.dedent("""
        from .tiny_200ep import model, dataloader
        model.roi_heads.box_head._target_ = "my_lab.FancyHead"
    """))
    url = "https://dl.fbaipublicfiles.com/detectron2/ViTDet/COCO"
    (root / "projects/ViTDet/README.md").write_text(textwrap.dedent(f"""
        <tr><td><a href="configs/COCO/tiny_200ep.py">T</a></td>
        <td><a href="{url}/tiny/f1/model_final_111111.pkl">model</a></td></tr>
        <tr><td><a href="configs/COCO/tiny_wide.py">W</a></td>
        <td><a href="{url}/wide/f2/model_final_222222.pkl">model</a></td></tr>
    """))
    (root / "projects/MViTv2").mkdir(parents=True)
    (root / "projects/MViTv2/README.md").write_text("no table\n")
    return root


def test_generator_reads_the_configs_and_records_refusals(tmp_path):
    source = generate(_mini_checkout(tmp_path / "d2"))
    namespace: dict = {}
    exec(compile(source, "catalog_lazy_data.py", "exec"), namespace)  # noqa: S102 - our output
    entries, configs = namespace["ENTRIES"], namespace["CONFIGS"]
    assert list(entries) == ["new_baselines/tiny_mask_rcnn_LSJ", "ViTDet/COCO/tiny_200ep",
                             "ViTDet/COCO/tiny_wide"]
    base, same, wide = entries.values()
    assert base == {"weights": "123/model_final_abcdef.pkl", "dataset": "coco",
                    "lazy_config": "new_baselines/tiny_mask_rcnn_LSJ"}
    assert same["lazy_config"] == base["lazy_config"]  # same network: one stored config
    assert same["url_dir"] == "ViTDet/COCO/tiny" and same["weights"] == "f1/model_final_111111.pkl"
    assert configs["ViTDet/COCO/tiny_wide"] == {
        "base": "new_baselines/tiny_mask_rcnn_LSJ",
        "changes": {"model.roi_heads.box_head._target_": "my_lab.FancyHead"}}
    assert "my_lab.FancyHead" in wide["refused"] and "model.roi_heads.box_head" in wide["refused"]
    assert "refused" not in base and "train" not in configs[base["lazy_config"]]["tree"]
    assert max(len(line) for line in source.splitlines()) <= 100


# Keys the fixtures narrowed (their manifest.json ``overrides``) or that Detectron2 spells with
# another module path once saved (``_target_``, ``torch.nn.LayerNorm``, a lambda's module name).
NARROWED = ("out_channels", "in_channels", "conv_dims", "fc_dims", "input_shape", "num_classes",
            "short_edge_length", "max_size", "embed_dim", "depth", "num_heads",
            "window_block_indexes", "img_size", "square_pad", "group_width", "w_0", "w_a")


def _comparable(value):
    if isinstance(value, str) and value.startswith("detectron2."):
        return value.rsplit(".", 1)[-1]
    if isinstance(value, NameRef):
        return value.short
    if isinstance(value, LambdaRef):
        return "<lambda>"
    if isinstance(value, PartialValue):
        return (_comparable(value.func), value.args, value.kwargs)
    return value


@pytest.mark.parametrize(("fixture", "name"), [
    ("mask_rcnn_regnetx_4gf_dds_FPN_100ep_LSJ",
     "new_baselines/mask_rcnn_regnetx_4gf_dds_FPN_100ep_LSJ"),
    ("mask_rcnn_regnety_4gf_dds_FPN_100ep_LSJ",
     "new_baselines/mask_rcnn_regnety_4gf_dds_FPN_100ep_LSJ"),
    ("mask_rcnn_vitdet_b_100ep", "ViTDet/COCO/mask_rcnn_vitdet_b_100ep"),
    ("mask_rcnn_mvitv2_t_3x", "MViTv2/mask_rcnn_mvitv2_t_3x"),
])
def test_stored_tree_matches_what_detectron2_saved_from_the_same_config(fixture, name):
    """The fixtures' config.yaml were written by Detectron2's LazyConfig.save from the same .py
    files (narrowed): every key is there, and every value the narrowing left alone is equal."""
    saved = read_lazy_yaml(require_fixtures() / "lazy" / fixture / "config.yaml")
    ours = flatten_tree(OFFICIAL[name].lazy_config)
    theirs = flatten_tree(inference_tree(saved))
    assert set(ours) == set(theirs)
    differ = {k for k in ours if _comparable(ours[k]) != _comparable(theirs[k])}
    assert all(k.rsplit(".", 1)[-1] in NARROWED or ".augmentations.0." in k for k in differ), \
        sorted(differ)
