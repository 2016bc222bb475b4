"""LazyConfig ``.py`` files read with ``ast`` (never run): the tiny configs under ``configs/``
and ``projects/`` here are written in Detectron2's style for these tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from export_tools.checkpoint import load_checkpoint
from export_tools.errors import ConfigError
from export_tools.lazy.markers import LambdaRef, NameRef
from export_tools.lazy.pyconfig import read_lazy_py
from export_tools.lazy.reader import read_lazy_yaml
from export_tools.lazy.translate import lazy_tree_to_config, read_lazy_tree
from tests.conftest import require_fixtures

HERE = Path(__file__).parent
LSJ = HERE / "configs" / "new_baselines" / "tiny_mask_rcnn_LSJ.py"
R50 = "mask_rcnn_R_50_FPN_100ep_LSJ"


def test_relative_imports_and_assignments_build_the_tree() -> None:
    tree = read_lazy_py(LSJ)
    assert set(tree) == {"model", "dataloader"}
    model = tree["model"]
    assert model["_target_"] == "detectron2.modeling.meta_arch.GeneralizedRCNN"
    assert model["backbone"]["norm"] == "SyncBN"  # chained assignment
    assert model["backbone"]["bottom_up"]["stem"]["norm"] == "SyncBN"
    assert isinstance(model["roi_heads"]["mask_head"]["conv_norm"], LambdaRef)
    stage = model["backbone"]["bottom_up"]["stages"][2]
    assert stage["stride_per_block"] == [2, 1, 1, 1, 1, 1] and stage["out_channels"] == 256
    assert stage["block_class"] == NameRef("detectron2.modeling.backbone.resnet.BottleneckBlock")
    resize = tree["dataloader"]["test"]["mapper"]["augmentations"][0]
    assert resize == {"_target_": "detectron2.data.transforms.ResizeShortestEdge",
                      "short_edge_length": 512, "max_size": 512}


def test_py_config_gives_the_same_config_as_the_fixture_yaml() -> None:
    """The tiny LSJ .py describes the R50 LSJ fixture's network: same Config once read."""
    folder = require_fixtures() / "lazy" / R50
    state, _ = load_checkpoint(folder / "model_final.pth")
    from_yaml = lazy_tree_to_config(read_lazy_yaml(folder / "config.yaml"), state, "yaml")
    from_py = lazy_tree_to_config(read_lazy_tree(LSJ), state, "py").to_dict()
    # the heads' lambda: read from its body in the .py (NaiveSyncBatchNorm), from the batch-norm
    # statistics in the saved YAML (its body lost); the same folded conv-BN either way
    for head in ("ROI_BOX_HEAD", "ROI_MASK_HEAD"):
        assert (from_py["MODEL"][head]["NORM"], from_yaml.MODEL[head].NORM) == ("naiveSyncBN",
                                                                             "BN")
        from_py["MODEL"][head]["NORM"] = "BN"
    assert from_py == from_yaml.to_dict()


def test_model_zoo_get_config_finds_the_configs_folder() -> None:
    tree = read_lazy_tree(HERE / "projects" / "Tiny" / "configs" / "tiny_zoo.py")
    assert tree["model"]["roi_heads"]["box_predictor"]["num_classes"] == 3
    assert tree["model"]["backbone"]["in_features"] == ["res2", "res3", "res4", "res5"]
    assert tree["dataloader"]["test"]["mapper"]["image_format"] == "BGR"


@pytest.mark.parametrize(("source", "expected"), [
    ("import os\nos.system('x')\n", "Expr statements"),
    ("x = __import__('os')\n", "name '__import__' is not defined"),
    ("def f():\n    pass\n", "FunctionDef"),
    ("x = [i for i in range(3) if i]\n", "one 'for' and no 'if'"),
    ("x = {i: i for i in range(3)}\n", "DictComp"),
    ("x = list(range(10 ** 6))\n", "range of more than"),
    ("x = dict(a=1)\nx.pop('b')\n", "no such key"),
    ("x = dict(a=1)\nx.clear()\n", "Expr statements"),
    ("x = open('f').read()\n", "name 'open'"),
    ("from detectron2.config import LazyCall as L\nx = L(print)\n", "name 'print'"),
    ("import torch\nx = torch.load('m.pth')\n", "call of torch.load"),
    ("x = 2 ** 100000\n", "exponent too large"),
    ("x = f'{1}'\n", "JoinedStr"),
    ("from .missing import model\n", "not found"),
    ("for i in []:\n    pass\nelse:\n    pass\n", "For statements"),
    ("for i in range(2):\n    import os\n    os.system('x')\n", "Expr statements"),
    # nested loops: each list is short, the steps together are not (4096 ** 3)
    ("r = list(range(4096))\nfor a in r:\n    for b in r:\n        for c in r:\n"
     "            x = 1\n", "loop steps in one file"),
    ("r = list(range(4096))\nx = [[[1 for c in r] for b in r] for a in r]\n",
     "loop steps in one file"),
])
def test_anything_else_is_refused_with_its_line(tmp_path: Path, source: str,
                                                expected: str) -> None:
    path = tmp_path / "bad.py"
    path.write_text(source, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        read_lazy_py(path)
    assert expected in str(err.value) and "line" in str(err.value) or "not found" in expected
    assert str(path) in str(err.value)


def test_import_cycle_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("from .b import model\n", encoding="utf-8")
    (tmp_path / "b.py").write_text("from .a import model\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="cycle"):
        read_lazy_py(tmp_path / "a.py")


def test_the_constructs_of_detectron2s_cascade_and_schedule_configs(tmp_path: Path) -> None:
    """What the ViTDet / MViTv2 cascade and 200ep/400ep configs write, read as data."""
    (tmp_path / "cfg.py").write_text("""
from detectron2.config import LazyCall as L
from detectron2.modeling.roi_heads import CascadeROIHeads, FastRCNNOutputLayers
train = dict(max_iter=10)
train["max_iter"] if False else None
model = dict(roi_heads=dict(box_head=1, box_predictor=2, proposal_matcher=3, num_classes=80))
train.max_iter *= 2
embed, depth = 768, 12
idx = list(range(0, 2)) + list(range(3, 5))
[model.roi_heads.pop(k) for k in ["box_head", "box_predictor", "proposal_matcher"]]
model.roi_heads.update(
    _target_=CascadeROIHeads,
    box_predictors=[L(FastRCNNOutputLayers)(weights=(w1, w1, w2))
                    for (w1, w2) in [(10, 5), (20, 10)]],
)
for i in range(2):
    model.roi_heads.box_predictors[i].test_score_thresh = 0.02 * (i + 1)
model.depth = depth
model.idx = idx
""", encoding="utf-8")
    with pytest.raises(ConfigError, match="Expr statements"):  # a bare subscript expression
        read_lazy_py(tmp_path / "cfg.py")
    path = tmp_path / "cfg.py"
    path.write_text(path.read_text().replace('train["max_iter"] if False else None\n', ""))
    tree = read_lazy_py(path)
    assert tree["train"] == {"max_iter": 20}
    heads = tree["model"]["roi_heads"]
    assert set(heads) == {"num_classes", "_target_", "box_predictors"}
    assert heads["_target_"] == "detectron2.modeling.roi_heads.CascadeROIHeads"
    assert [p["weights"] for p in heads["box_predictors"]] == [[10, 10, 5], [20, 20, 10]]
    assert [p["test_score_thresh"] for p in heads["box_predictors"]] == [0.02, 0.04]
    assert (tree["model"]["depth"], tree["model"]["idx"]) == (12, [0, 1, 3, 4])
