"""The LazyConfig YAML reader: Python tags as inert markers, interpolations, refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from export_tools.errors import ConfigError
from export_tools.lazy.markers import LambdaRef, NameRef, PartialValue, ShapeSpecValue
from export_tools.lazy.reader import is_lazy_config, parse_lazy_yaml, read_lazy_yaml
from tests.conftest import require_fixtures

LAZY_FOLDERS = ("mask_rcnn_R_50_FPN_100ep_LSJ", "mask_rcnn_regnetx_4gf_dds_FPN_100ep_LSJ",
                "mask_rcnn_regnety_4gf_dds_FPN_100ep_LSJ", "mask_rcnn_vitdet_b_100ep",
                "mask_rcnn_mvitv2_t_3x")


def _read(tmp_path: Path, text: str) -> dict:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return read_lazy_yaml(path)


def _refused(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as err:
        _read(tmp_path, text)
    return str(err.value)


@pytest.mark.parametrize("folder", LAZY_FOLDERS)
def test_every_fixture_config_reads_as_data(folder: str) -> None:
    path = require_fixtures() / "lazy" / folder / "config.yaml"
    assert is_lazy_config(path)
    tree = read_lazy_yaml(path)
    model = tree["model"]
    assert model["_target_"] == "detectron2.modeling.GeneralizedRCNN"
    assert model["roi_heads"]["box_predictor"]["num_classes"] == 3  # ${..num_classes}
    assert isinstance(model["roi_heads"]["box_head"]["input_shape"], ShapeSpecValue)
    fmt = tree["dataloader"]["test"]["mapper"]["image_format"]  # ${...train.mapper.image_format}
    assert fmt == tree["dataloader"]["train"]["mapper"]["image_format"]
    assert "${" not in repr(tree)


def test_yacs_fixture_config_is_not_lazy() -> None:
    assert not is_lazy_config(require_fixtures() / "mask_rcnn_R_50_FPN" / "config.yaml")


def test_markers_for_names_lambdas_and_partials() -> None:
    folder = require_fixtures() / "lazy"
    r50 = read_lazy_yaml(folder / "mask_rcnn_R_50_FPN_100ep_LSJ" / "config.yaml")["model"]
    stage = r50["backbone"]["bottom_up"]["stages"][0]
    assert stage["block_class"] == NameRef("detectron2.modeling.backbone.resnet.BottleneckBlock")
    assert isinstance(r50["roi_heads"]["box_head"]["conv_norm"], LambdaRef)
    assert r50["backbone"]["in_features"] == ["res2", "res3", "res4", "res5"]  # ${.bottom_up...}
    vit = read_lazy_yaml(folder / "mask_rcnn_vitdet_b_100ep" / "config.yaml")["model"]
    norm = vit["backbone"]["net"]["norm_layer"]
    assert isinstance(norm, PartialValue)
    assert norm.func == NameRef("torch.nn.modules.normalization.LayerNorm")
    assert norm.kwargs == {"eps": 1e-6}


def test_interpolations_relative_and_absolute(tmp_path: Path) -> None:
    tree = _read(tmp_path, "a: {b: 1, c: '${.b}', d: {e: '${..b}', f: '${a.c}', g: 'x${..b}y'}}\n"
                           "h: [5, '${.0}']\n")
    assert tree["a"]["c"] == 1 and tree["a"]["d"]["e"] == 1 and tree["a"]["d"]["f"] == 1
    assert tree["a"]["d"]["g"] == "x1y"
    assert tree["h"] == [5, 5]


def test_unknown_python_name_is_refused_by_name_and_key_path(tmp_path: Path) -> None:
    msg = _refused(tmp_path, "model:\n  x: {block: !!python/name:os.system ''}\n")
    assert "!!python/name:os.system" in msg and "key model.x.block" in msg


def test_eval_apply_is_refused_by_tag_and_key_path(tmp_path: Path) -> None:
    msg = _refused(tmp_path, "model:\n  sizes: !!python/object/apply:eval ['1+1']\n")
    assert "!!python/object/apply:eval" in msg and "key model.sizes" in msg


def test_other_objects_and_tags_are_refused(tmp_path: Path) -> None:
    msg = _refused(tmp_path, "a: [1, !!python/object:collections.OrderedDict {}]\n")
    assert "!!python/object:collections.OrderedDict" in msg and "key a.1" in msg
    msg = _refused(tmp_path, "a: !custom 3\n")
    assert "!custom" in msg and "key a" in msg
    msg = _refused(tmp_path, "a: !!python/module:os ''\n")
    assert "python/module:os" in msg


def test_bad_interpolations_name_their_key(tmp_path: Path) -> None:
    assert "key a.b" in _refused(tmp_path, "a: {b: '${.missing}'}\n")
    assert "key a.b" in _refused(tmp_path, "a: {b: '${oc.env:HOME}'}\n")
    assert "cycle" in _refused(tmp_path, "a: '${b}'\nb: '${a}'\n")
    assert "above the root" in _refused(tmp_path, "a: '${...x}'\n")


def test_pickle_beside_the_yaml_is_never_read(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml.pkl"
    path.write_bytes(b"\x80\x04not read")
    with pytest.raises(ConfigError, match="pickles are never read"):
        read_lazy_yaml(path)


def test_malformed_yaml_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        parse_lazy_yaml("a: [1, 2\n", "f.yaml")
    assert "\n" not in str(err.value) and "f.yaml" in str(err.value)
