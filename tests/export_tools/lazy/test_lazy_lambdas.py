"""Lambda norms: read from a ``.py`` config's lambda body (each norm class get_norm names), refused
with the key path otherwise; a saved YAML's lambda (body lost) read from the checkpoint."""

from __future__ import annotations

import copy
import shutil
import textwrap
from pathlib import Path

import numpy as np
import pytest

from export_tools.errors import ConfigError
from export_tools.lazy.markers import LambdaRef
from export_tools.lazy.pyconfig import read_lazy_py
from export_tools.lazy.reader import parse_lazy_yaml
from export_tools.lazy.translate import lazy_tree_to_config, read_lazy_tree
from export_tools.lazy.writer import dump_lazy_yaml

HERE = Path(__file__).parent
LSJ = HERE / "configs" / "new_baselines" / "tiny_mask_rcnn_LSJ.py"
IMPORTS = """\
import torch
import torch.nn as nn
from torch import nn as tnn
from detectron2.layers import BatchNorm2d, FrozenBatchNorm2d, NaiveSyncBatchNorm
from detectron2.layers.batch_norm import LayerNorm
import detectron2.layers.batch_norm as bn
"""


def _lambda(tmp_path: Path, source: str) -> LambdaRef:
    path = tmp_path / "norms.py"
    path.write_text(IMPORTS + f"cfg = dict(norm={source})\n")
    value = read_lazy_py(path)["cfg"]["norm"]
    assert isinstance(value, LambdaRef) and value.name == "norms.py.<lambda>"
    return value


@pytest.mark.parametrize(("source", "norm"), [
    ('lambda c: NaiveSyncBatchNorm(c, stats_mode="N")', "naiveSyncBN_N"),
    ("lambda c: NaiveSyncBatchNorm(c)", "naiveSyncBN"),
    ('lambda ch: bn.NaiveSyncBatchNorm(ch, stats_mode="", momentum=0.01)', "naiveSyncBN"),
    ("lambda c: BatchNorm2d(c)", "BN"),
    ("lambda c: nn.BatchNorm2d(num_features=c, eps=1e-5, affine=True)", "BN"),
    ("lambda c: torch.nn.BatchNorm2d(c, 1e-05, 0.03)", "BN"),
    ("lambda c: nn.SyncBatchNorm(c)", "nnSyncBN"),
    ("lambda c: tnn.SyncBatchNorm(c, momentum=0.1)", "nnSyncBN"),
    ("lambda c: FrozenBatchNorm2d(c)", "FrozenBN"),
    ("lambda c: LayerNorm(c)", "LN"),
    ("lambda c: bn.LayerNorm(c, eps=1e-6)", "LN"),
    ("lambda c: nn.GroupNorm(32, c)", "GN"),
    ("lambda c: nn.GroupNorm(num_groups=32, num_channels=c)", "GN"),
])
def test_a_norm_lambda_is_read_as_its_get_norm_name(tmp_path, source, norm) -> None:
    value = _lambda(tmp_path, source)
    assert (value.norm, value.refusal) == (norm, "")


@pytest.mark.parametrize(("source", "why"), [
    ("lambda c: nn.BatchNorm2d(c, eps=1e-3)", "eps=0.001: supported: 1e-05"),
    ("lambda c: nn.BatchNorm2d(c, affine=False)", "affine=False"),
    ("lambda c: nn.BatchNorm2d(c, track_running_stats=False)", "track_running_stats=False"),
    ('lambda c: NaiveSyncBatchNorm(c, stats_mode="X")', "stats_mode='X'"),
    ('lambda c: nn.BatchNorm2d(c, device="cuda")', "device='cuda' is not read"),
    ("lambda c: LayerNorm(c, eps=1e-5)", "eps=1e-05: supported: 1e-06"),
    ("lambda c: nn.LayerNorm(c)", "nn.LayerNorm is not a known norm class"),
    ("lambda c: nn.GroupNorm(16, c)", "num_groups=16: supported: 32"),
    ("lambda c: nn.GroupNorm(c, 32)", "'c' is not passed as num_channels"),
    ("lambda c: nn.GroupNorm(num_channels=c)", "num_groups must be given"),
    ("lambda c: nn.BatchNorm2d(c * 2)", "argument c * 2 is neither 'c' nor a literal"),
    ("lambda c: nn.BatchNorm2d(256)", "'c' is not passed as num_features"),
    ("lambda c, d: nn.BatchNorm2d(c)", "not a lambda of one parameter"),
    ("lambda: nn.BatchNorm2d(256)", "not a lambda of one parameter"),
    ("lambda c: c", "its body is not a call"),
    ("lambda c: undefined_name(c)", "undefined_name is not a known norm class"),
    ("lambda c: nn.BatchNorm2d(c, **{})", "**kwargs"),
])
def test_any_other_lambda_records_why(tmp_path, source, why) -> None:
    value = _lambda(tmp_path, source)
    assert value.norm == "" and why in value.refusal
    assert value.refusal.startswith("line 7: lambda")


def _config_with(tmp_path: Path, lines: str) -> Path:
    """A config importing the tiny LSJ model, with ``lines`` added."""
    shutil.copytree(HERE / "configs", tmp_path / "configs")
    path = tmp_path / "configs" / "new_baselines" / "changed.py"
    path.write_text(IMPORTS + "from .tiny_mask_rcnn_LSJ import model, dataloader\n" +
                    textwrap.dedent(lines))
    return path


def test_the_lsj_lambda_heads_need_no_checkpoint() -> None:
    cfg = lazy_tree_to_config(read_lazy_tree(LSJ), {}, "py")
    assert cfg.MODEL.ROI_BOX_HEAD.NORM == cfg.MODEL.ROI_MASK_HEAD.NORM == "naiveSyncBN"


def test_lambda_heads_and_backbone_norms_of_each_kind(tmp_path) -> None:
    path = _config_with(tmp_path, """\
        model.roi_heads.box_head.conv_norm = lambda c: LayerNorm(c)
        model.roi_heads.mask_head.conv_norm = lambda c: nn.GroupNorm(32, c)
        model.backbone.norm = lambda c: LayerNorm(c)
    """)
    cfg = lazy_tree_to_config(read_lazy_tree(path), {}, "py")
    assert (cfg.MODEL.ROI_BOX_HEAD.NORM, cfg.MODEL.ROI_MASK_HEAD.NORM) == ("LN", "GN")
    assert cfg.LAZY.BACKBONE["norm"] == "LN"


def test_a_refused_lambda_names_its_key_path(tmp_path) -> None:
    path = _config_with(tmp_path, """\
        model.roi_heads.mask_head.conv_norm = lambda c: nn.BatchNorm2d(c, eps=1e-3)
    """)
    with pytest.raises(ConfigError) as err:
        lazy_tree_to_config(read_lazy_tree(path), {}, str(path))
    msg = str(err.value)
    assert "key model.roi_heads.mask_head.conv_norm: is a lambda (changed.py.<lambda>)" in msg
    assert "nn.BatchNorm2d(c, eps=0.001)" in msg and "eps=0.001: supported: 1e-05" in msg
    assert "supported: lambda c: X(c, ...) with X one of NaiveSyncBatchNorm" in msg
    path.write_text(path.read_text() + "model.backbone.norm = lambda c: c\n")
    with pytest.raises(ConfigError, match=r"key model\.backbone\.norm: is a lambda"):
        lazy_tree_to_config(read_lazy_tree(path), {}, str(path))


def _cascade(tree: dict, conv_norm: object) -> dict:
    """The tiny LSJ tree with CascadeROIHeads (three stages), as Detectron2's cascade configs
    build them, every box head's ``conv_norm`` set to ``conv_norm``."""
    heads = tree["model"]["roi_heads"]
    head, predictor = heads.pop("box_head"), heads.pop("box_predictor")
    heads.pop("proposal_matcher")
    heads["_target_"] = "detectron2.modeling.roi_heads.CascadeROIHeads"
    heads["box_heads"] = [{**copy.deepcopy(head), "conv_norm": conv_norm} for _ in range(3)]
    heads["box_predictors"] = [
        {**copy.deepcopy(predictor), "cls_agnostic_bbox_reg": True,
         "box2box_transform": {**predictor["box2box_transform"], "weights": [w, w, w / 2, w / 2]}}
        for w in (10.0, 20.0, 30.0)]
    return tree


def test_yaml_dump_lambda_of_cascade_heads_is_read_from_the_statistics() -> None:
    """LazyConfig.save writes a lambda as ``!!python/name:...<lambda>``: the body is gone, and the
    checkpoint's running statistics of each stage's first conv norm say it is a batch norm."""
    tree = _cascade(read_lazy_tree(LSJ), LambdaRef("cascade.py.<lambda>"))
    tree["model"]["roi_heads"]["mask_head"]["conv_norm"] = "BN"
    stats = {f"roi_heads.box_head.{i}.conv1.norm.{s}": np.zeros(64, np.float32)
             for i in range(3) for s in ("running_mean", "running_var")}
    cfg = lazy_tree_to_config(copy.deepcopy(tree), stats, "config.yaml")
    assert cfg.MODEL.ROI_HEADS.NAME == "CascadeROIHeads" and cfg.MODEL.ROI_BOX_HEAD.NORM == "BN"
    assert cfg.MODEL.ROI_BOX_CASCADE_HEAD.BBOX_REG_WEIGHTS[2] == [30.0, 30.0, 15.0, 15.0]
    with pytest.raises(ConfigError) as err:
        lazy_tree_to_config(tree, {}, "config.yaml")
    assert "key model.roi_heads.box_heads.0.conv_norm: is a lambda (cascade.py.<lambda>) and " \
        "the checkpoint holds no batch-norm statistics at roi_heads.box_head.0.conv1.norm" \
        in str(err.value)


def test_a_read_lambda_is_written_as_its_norm_name() -> None:
    """The config.yaml a zoo export writes says which norm it is (LazyConfig.save could not)."""
    tree = _cascade(read_lazy_tree(LSJ), LambdaRef("c.py.<lambda>", norm="naiveSyncBN_N"))
    text = dump_lazy_yaml(tree)
    assert "conv_norm: naiveSyncBN_N" in text and "python/name:c.py" not in text
    cfg = lazy_tree_to_config(parse_lazy_yaml(text, "written"), {}, "written")
    assert cfg.MODEL.ROI_BOX_HEAD.NORM == cfg.MODEL.ROI_MASK_HEAD.NORM == "naiveSyncBN"
    unread = dump_lazy_yaml({"model": {"norm": LambdaRef("c.py.<lambda>")}})
    assert "!!python/name:c.py.%3Clambda%3E ''" in unread  # as LazyConfig.save quotes it
