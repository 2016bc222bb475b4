"""The LazyConfig backbone is one registry entry; the _target_ table names registered builders."""

from __future__ import annotations

import pytest

from export_tools.checkpoint import load_checkpoint
from export_tools.config import Config, ConfigError
from export_tools.lazy import targets as T
from export_tools.lazy.translate import load_lazy_config
from export_tools.modeling.backbone.build import size_divisibility, square_size
from export_tools.modeling.backbone.lazy import LAZY_BACKBONE_NAME, LAZY_KINDS
from export_tools.modeling.registry import (
    BACKBONES,
    META_ARCHS,
    PROPOSAL_GENERATORS,
    ROI_BOX_HEADS,
    ROI_HEADS,
    ROI_MASK_HEADS,
    RPN_HEADS,
)
from export_tools.modeling.supported import check_supported
from tests.conftest import LAZY_MODELS, require_fixtures

VITDET = "mask_rcnn_vitdet_b_100ep"
R50 = "mask_rcnn_R_50_FPN_100ep_LSJ"


def _load(name: str) -> Config:
    folder = require_fixtures() / "lazy" / name
    state, _ = load_checkpoint(folder / "model_final.pth")
    return load_lazy_config(folder / "config.yaml", state)


def _with_spec(cfg: Config, **changes: object) -> Config:
    data = cfg.to_dict()
    data["LAZY"]["BACKBONE"].update(changes)
    return Config(data, source=cfg.source)


def test_the_lazy_backbone_is_registered_with_its_kinds() -> None:
    entry = BACKBONES.entry(LAZY_BACKBONE_NAME)
    assert entry.check is not None
    assert set(entry.attrs["lazy_kinds"]) == set(T.BACKBONES.values()) == set(LAZY_KINDS)


@pytest.mark.parametrize("name", LAZY_MODELS)
def test_every_lazy_fixture_passes_check_supported(name: str) -> None:
    cfg = _load(name)
    assert cfg.MODEL.BACKBONE.NAME == LAZY_BACKBONE_NAME
    check_supported(cfg)


def test_padding_comes_from_the_spec_through_the_registry() -> None:
    vit, r50 = _load(VITDET), _load(R50)
    assert (size_divisibility(r50), square_size(r50)) == (32, 0)  # FPN: no square_pad
    assert square_size(vit) == int(vit.LAZY.BACKBONE.square_pad) > 0
    assert size_divisibility(vit) == int(vit.LAZY.BACKBONE.size_divisibility)
    assert square_size(_with_spec(vit, square_pad=640)) == 640


@pytest.mark.parametrize(("changes", "key"), [
    ({"kind": "BiFPN"}, "LAZY.BACKBONE.kind"),
])
def test_an_unbuilt_kind_is_refused_by_key(changes: dict, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        check_supported(_with_spec(_load(R50), **changes))
    assert err.value.key == key and "BiFPN" in str(err.value)


def test_an_unbuilt_bottom_up_is_refused_by_key() -> None:
    cfg = _load(R50)
    data = cfg.to_dict()
    data["LAZY"]["BACKBONE"]["bottom_up"]["kind"] = "EfficientNet"
    with pytest.raises(ConfigError) as err:
        check_supported(Config(data, source=cfg.source))
    assert err.value.key == "LAZY.BACKBONE.bottom_up.kind"


def test_a_lazy_backbone_without_its_spec_is_refused() -> None:
    data = _load(R50).to_dict()
    del data["LAZY"]
    with pytest.raises(ConfigError) as err:
        check_supported(Config(data))
    assert err.value.key == "LAZY.BACKBONE"


@pytest.mark.parametrize(("table", "registry"), [
    (T.META_ARCHS, META_ARCHS), (T.PROPOSAL_GENERATORS, PROPOSAL_GENERATORS),
    (T.RPN_HEADS, RPN_HEADS), (T.ROI_HEADS, ROI_HEADS), (T.BOX_HEADS, ROI_BOX_HEADS),
    (T.MASK_HEADS, ROI_MASK_HEADS),
])
def test_target_kinds_are_registered_builders(table: dict[str, str], registry) -> None:
    assert set(table.values()) <= set(registry.names()), registry.kind
