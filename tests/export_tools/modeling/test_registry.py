"""The builder registries are what ``check_supported`` accepts and what the graph builders call."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from export_tools.config import Config, ConfigError, load_config
from export_tools.modeling.backbone.build import build_resnet_fpn_backbone
from export_tools.modeling.checks import Problem
from export_tools.modeling.meta_arch import build_model_graph
from export_tools.modeling.registry import (
    BACKBONES,
    META_ARCHS,
    PROPOSAL_GENERATORS,
    REGISTRIES,
    ROI_BOX_HEADS,
    ROI_HEADS,
    ROI_KEYPOINT_HEADS,
    ROI_MASK_HEADS,
    RPN_HEADS,
    SEM_SEG_HEADS,
    Registry,
)
from export_tools.modeling.supported import check_supported
from export_tools.perf.random_weights import SyntheticWeights
from tests.conftest import ALL_MODELS, require_fixtures

RCNN = "mask_rcnn_R_50_FPN"
# a fixture model whose architecture reads each registry's key
USER = {
    id(META_ARCHS): RCNN, id(BACKBONES): RCNN, id(PROPOSAL_GENERATORS): RCNN,
    id(RPN_HEADS): RCNN, id(ROI_HEADS): RCNN, id(ROI_BOX_HEADS): RCNN, id(ROI_MASK_HEADS): RCNN,
    id(ROI_KEYPOINT_HEADS): "keypoint_rcnn_R_50_FPN", id(SEM_SEG_HEADS): "panoptic_fpn_R_50",
}


def _config(model: str, opts: list[str] | None = None) -> Config:
    return load_config(require_fixtures() / model / "config.yaml", opts)


def test_every_registry_is_tested() -> None:
    assert sorted(USER) == sorted(id(r) for r in REGISTRIES)
    assert all(r.names() for r in REGISTRIES)


@pytest.mark.parametrize("registry", REGISTRIES, ids=lambda r: r.key)
def test_an_unregistered_name_is_refused_listing_exactly_the_registered_ones(
        registry: Registry) -> None:
    cfg = _config(USER[id(registry)], [registry.key, "NotRegistered"])
    with pytest.raises(ConfigError) as info:
        check_supported(cfg)
    assert info.value.key == registry.key
    listed = str(info.value).split("supported: ", 1)[1].split(" (also", 1)[0]
    assert set(re.findall(r"'([^']*)'", listed)) - {""} == set(registry.names())


@pytest.mark.parametrize("model", ALL_MODELS)
def test_every_fixture_selects_registered_builders(model: str) -> None:
    cfg = _config(model)
    check_supported(cfg)
    assert cfg.get(META_ARCHS.key) in META_ARCHS and cfg.get(BACKBONES.key) in BACKBONES


def _recording_backbone(calls: list[str]) -> Any:
    def build(g: Any, w: Any, image: Any, cfg: Config) -> Any:
        calls.append(cfg.get(BACKBONES.key))
        return build_resnet_fpn_backbone(g, w, image, cfg)

    return build


def _refuse_odd_fpn_channels(cfg: Config) -> Iterator[Problem]:
    if cfg.get("MODEL.FPN.OUT_CHANNELS") % 2:
        yield Problem("MODEL.FPN.OUT_CHANNELS", "must be even; supported: even numbers")


def test_a_decorated_builder_is_accepted_checked_and_called() -> None:
    calls: list[str] = []
    BACKBONES.register("build_test_backbone", check=_refuse_odd_fpn_channels,
                       size_divisibility=32)(_recording_backbone(calls))
    try:
        cfg = _config(RCNN, [BACKBONES.key, "build_test_backbone"])
        check_supported(cfg)
        graph, _ = build_model_graph(cfg, SyntheticWeights.for_config(cfg), "test")
        assert calls == ["build_test_backbone"] and graph.outputs
        with pytest.raises(ConfigError) as info:
            check_supported(_config(RCNN, [BACKBONES.key, "build_test_backbone",
                                           "MODEL.FPN.OUT_CHANNELS", "255"]))
        assert info.value.key == "MODEL.FPN.OUT_CHANNELS"
    finally:
        BACKBONES.unregister("build_test_backbone")
    with pytest.raises(ConfigError, match="MODEL.BACKBONE.NAME"):
        check_supported(_config(RCNN, [BACKBONES.key, "build_test_backbone"]))


def test_a_name_registers_once() -> None:
    with pytest.raises(ValueError, match="registered twice"):
        BACKBONES.register("build_resnet_fpn_backbone")(build_resnet_fpn_backbone)


def test_looking_up_an_unknown_name_names_the_key_and_file() -> None:
    cfg = _config(RCNN, [ROI_HEADS.key, "MyROIHeads"])
    with pytest.raises(ConfigError) as info:
        ROI_HEADS.lookup(cfg)
    assert info.value.key == ROI_HEADS.key and info.value.file == cfg.source
    assert "StandardROIHeads" in str(info.value)
