"""Swin under an FPN (ViTDet's ``cascade_mask_rcnn_swin_{b,l}_in21k_50ep``): the zoo trees as
read from Detectron2's ``.py`` files (stored in the catalog: no checkout needed), the spec they
give, and the settings that are refused by key path."""

from __future__ import annotations

import copy

import pytest

from export_tools.errors import ConfigError
from export_tools.lazy.translate import lazy_tree_to_config
from export_tools.modeling.supported import check_supported
from export_tools.zoo.catalog import all_entries

SWIN_B = "ViTDet/COCO/cascade_mask_rcnn_swin_b_in21k_50ep"
SWINS = sorted(n for n in all_entries() if "_swin_" in n)
UP = "model.backbone.bottom_up"


def _tree(name: str = SWIN_B) -> dict:
    return copy.deepcopy(all_entries()[name].lazy_config)


def _config(tree: dict):
    return lazy_tree_to_config(tree, {}, "config.py")


def _refusal(tree: dict) -> ConfigError:
    with pytest.raises(ConfigError) as err:
        _config(tree)
    return err.value


def test_the_four_swin_zoo_configs_are_listed() -> None:
    assert SWINS == sorted(f"ViTDet/{d}/cascade_mask_rcnn_swin_{s}_in21k_50ep"
                           for d in ("COCO", "LVIS") for s in "bl")


@pytest.mark.parametrize("name", SWINS)
def test_every_swin_zoo_config_passes_check_supported(name: str) -> None:
    cfg = _config(_tree(name))
    check_supported(cfg)
    spec = cfg.LAZY.BACKBONE
    assert spec["kind"] == "FPN" and spec["norm"] == "LN"
    assert spec["in_features"] == ["p0", "p1", "p2", "p3"]
    assert (spec["size_divisibility"], spec["square_pad"]) == (32, 1024)
    assert spec["bottom_up"]["kind"] == "SwinTransformer"


def test_swin_b_spec() -> None:
    up = _config(_tree()).LAZY.BACKBONE["bottom_up"]
    assert (up["embed_dim"], up["depths"], up["num_heads"]) == (128, [2, 2, 18, 2],
                                                                 [4, 8, 16, 32])
    assert (up["patch_size"], up["window_size"], up["mlp_ratio"], up["ln_eps"]) == (4, 7, 4.0,
                                                                                    1e-5)
    assert up["qkv_bias"] and up["patch_norm"] and up["qk_scale"] == 0.0
    assert up["strides"] == {"p0": 4, "p1": 8, "p2": 16, "p3": 32}


def test_swin_l_spec() -> None:
    up = _config(_tree("ViTDet/COCO/cascade_mask_rcnn_swin_l_in21k_50ep")).LAZY.BACKBONE[
        "bottom_up"]
    assert (up["embed_dim"], up["num_heads"]) == (192, [6, 12, 24, 48])


def test_training_only_arguments_are_accepted() -> None:
    tree = _tree()
    tree["model"]["backbone"]["bottom_up"].update(
        frozen_stages=2, drop_rate=0.1, attn_drop_rate=0.1, use_checkpoint=True, qk_scale=0.5)
    assert _config(tree).LAZY.BACKBONE["bottom_up"]["qk_scale"] == 0.5


@pytest.mark.parametrize(("changes", "key", "words"), [
    ({"ape": True}, f"{UP}.ape", "absolute position"),
    ({"patch_size": 2}, f"{UP}.patch_size", "supported: 4"),
    ({"in_chans": 1}, f"{UP}.in_chans", "colour"),
    ({"num_heads": [4, 8, 16]}, f"{UP}.num_heads", "one head count per stage"),
    ({"num_heads": [3, 8, 16, 32]}, f"{UP}.num_heads", "do not split into 3 heads"),
    ({"depths": [2, 0, 18, 2]}, f"{UP}.depths", "positive integers"),
    ({"out_indices": [1, 4]}, f"{UP}.out_indices", "0..3"),
    ({"act_layer": "gelu"}, f"{UP}.act_layer", "unknown or unsupported argument"),
])
def test_unbuilt_settings_are_refused_by_key(changes: dict, key: str, words: str) -> None:
    tree = _tree()
    tree["model"]["backbone"]["bottom_up"].update(changes)
    err = _refusal(tree)
    assert err.key == key and words in str(err), str(err)


def test_fpn_inputs_must_be_swin_outputs() -> None:
    tree = _tree()
    tree["model"]["backbone"]["bottom_up"]["out_indices"] = [1, 2, 3]
    err = _refusal(tree)
    assert err.key == "model.backbone.in_features" and "'p0'" in str(err)


def test_fpn_norm_ln_is_read_and_others_refused() -> None:
    tree = _tree()
    tree["model"]["backbone"]["norm"] = "RMS"
    err = _refusal(tree)
    assert err.key == "model.backbone.norm" and "'LN'" in str(err)
