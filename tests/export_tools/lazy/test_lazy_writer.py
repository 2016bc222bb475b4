"""Writing a LazyConfig tree back as ``config.yaml``: what the reader reads is what was written."""

from __future__ import annotations

import pytest

from export_tools.lazy.markers import LambdaRef, NameRef, PartialValue, ShapeSpecValue
from export_tools.lazy.reader import parse_lazy_yaml, read_lazy_yaml
from export_tools.lazy.writer import dump_lazy_yaml
from tests.conftest import require_fixtures

FIXTURES = ("mask_rcnn_R_50_FPN_100ep_LSJ", "mask_rcnn_regnety_4gf_dds_FPN_100ep_LSJ",
            "mask_rcnn_vitdet_b_100ep", "mask_rcnn_mvitv2_t_3x")


@pytest.mark.parametrize("name", FIXTURES)
def test_fixture_trees_round_trip(name: str) -> None:
    tree = read_lazy_yaml(require_fixtures() / "lazy" / name / "config.yaml")
    assert parse_lazy_yaml(dump_lazy_yaml(tree), "written") == tree


def test_markers_are_written_as_the_tags_lazyconfig_save_uses() -> None:
    tree = {"model": {
        "block": NameRef("detectron2.modeling.backbone.resnet.BottleneckBlock"),
        "norm": LambdaRef("cfg.py.<lambda>"),
        "shape": ShapeSpecValue({"channels": 256, "height": 7, "width": 7}),
        "layer": PartialValue(NameRef("torch.nn.LayerNorm"), [], {"eps": 1e-6}),
        "shared": [1, 2],
    }}
    tree["model"]["again"] = tree["model"]["shared"]  # no YAML anchors: each node written out
    text = dump_lazy_yaml(tree)
    assert "!!python/name:detectron2.modeling.backbone.resnet.BottleneckBlock ''" in text
    assert "!!python/object:detectron2.layers.ShapeSpec" in text
    assert "!!python/object/apply:functools.partial" in text and "&id" not in text
    assert parse_lazy_yaml(text, "written") == tree
