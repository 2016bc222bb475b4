"""A LazyConfig tree -> the exporter's :class:`Config` (Detectron2's yacs keys plus ``LAZY``).

The RPN, ROI heads and test-time input of LazyConfig models are the same modules the yacs models
use, so they map onto the same keys; the backbone (ResNet stages, RegNet, ViT, MViTv2) goes to
``LAZY.BACKBONE`` as a plain spec read by :mod:`export_tools.modeling.backbone.lazy`.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from export_tools.config.defaults import DEFAULTS
from export_tools.config.node import Config
from export_tools.errors import ConfigError
from export_tools.lazy import targets as T
from export_tools.lazy.backbones import backbone_spec
from export_tools.lazy.heads import roi_heads_overrides
from export_tools.lazy.interpolate import resolve_interpolations
from export_tools.lazy.nodes import Node
from export_tools.lazy.pyconfig import read_lazy_py
from export_tools.lazy.reader import read_lazy_yaml
from export_tools.modeling.backbone.lazy import LAZY_BACKBONE_NAME

__all__ = ["LAZY_BACKBONE_NAME", "load_lazy_config"]
GENERALIZED_RCNN_KEYS = ("backbone", "proposal_generator", "roi_heads", "pixel_mean",
                         "pixel_std", "input_format", "vis_period")


def load_lazy_config(path: str | os.PathLike[str], state: Mapping[str, np.ndarray],
                     opts: list[str] | None = None) -> Config:
    """Read a LazyConfig ``config.yaml`` into a Config the model builders take.

    ``state`` (the checkpoint) settles what the file cannot say: the norm a lambda makes.
    """
    source = str(path)
    if opts:
        raise ConfigError("--opts overrides are not supported for LazyConfig files yet",
                          file=source)
    return lazy_tree_to_config(read_lazy_tree(path), state, source)


def read_lazy_tree(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The resolved tree of a LazyConfig ``config.yaml`` or ``.py`` file."""
    path = Path(path)
    if path.suffix == ".py":
        return resolve_interpolations(read_lazy_py(path), str(path))
    return read_lazy_yaml(path)


def lazy_tree_to_config(tree: dict[str, Any], state: Mapping[str, np.ndarray],
                        source: str) -> Config:
    root = Node(tree, "", source)
    model = root.child("model")
    model.target(T.META_ARCHS, "meta-architecture")
    model.only_keys(GENERALIZED_RCNN_KEYS)
    spec = backbone_spec(model.child("backbone"))
    merged = copy.deepcopy(DEFAULTS)
    _update(merged, {
        "MODEL": {
            "META_ARCHITECTURE": "GeneralizedRCNN",
            "BACKBONE": {"NAME": LAZY_BACKBONE_NAME},
            "PIXEL_MEAN": _three(model, "pixel_mean"),
            "PIXEL_STD": _three(model, "pixel_std"),
        },
        "INPUT": _input_overrides(root),
    })
    _update(merged, _rpn_overrides(model.child("proposal_generator")))
    _update(merged, roi_heads_overrides(model.child("roi_heads"), state))
    merged["LAZY"] = {"BACKBONE": spec}
    return Config(merged, source=source)


def _update(dst: dict[str, Any], src: dict[str, Any]) -> None:
    for key, value in src.items():
        if isinstance(value, dict) and isinstance(dst.get(key), dict):
            _update(dst[key], value)
        else:
            dst[key] = value


def _three(node: Node, key: str) -> list[float]:
    values = node.list(key)
    if len(values) != 3 or not all(isinstance(v, (int, float)) for v in values):
        raise node.fail(f"must be 3 numbers (one per colour channel), got {values}", key)
    if key == "pixel_std" and any(v == 0 for v in values):
        raise node.fail(f"must not contain 0 (the input is divided by it), got {values}", key)
    return [float(v) for v in values]


def _input_overrides(root: Node) -> dict[str, Any]:
    """``dataloader.test.mapper``: one ResizeShortestEdge and the image format."""
    mapper = root.child("dataloader").child("test").child("mapper")
    augs = mapper.list("augmentations")
    if len(augs) != 1:
        raise mapper.fail(f"{len(augs)} test-time augmentations; supported: exactly one "
                          "ResizeShortestEdge", "augmentations")
    resize = mapper.item("augmentations", 0)
    resize.target(T.TEST_AUGMENTATIONS, "test-time augmentation")
    resize.only_keys(("short_edge_length", "max_size", "sample_style", "interp"))
    resize.equals("sample_style", "choice", "test-time resize picks its one size")
    short = resize.require("short_edge_length")
    if isinstance(short, list):
        if len(short) != 1:
            raise resize.fail(f"{short} gives several sizes; supported: one", "short_edge_length")
        short = short[0]
    if isinstance(short, bool) or not isinstance(short, int) or short <= 0:
        raise resize.fail(f"must be a positive integer, got {short!r}", "short_edge_length")
    max_size = resize.int("max_size", 1 << 30)
    if max_size <= 0:
        raise resize.fail(f"must be > 0, got {max_size}", "max_size")
    fmt = mapper.str("image_format", "BGR")
    if fmt not in ("BGR", "RGB"):
        raise mapper.fail(f"unsupported value {fmt!r}; supported: 'BGR', 'RGB'", "image_format")
    return {"MIN_SIZE_TEST": short, "MAX_SIZE_TEST": max_size, "FORMAT": fmt}


def _rpn_overrides(rpn: Node) -> dict[str, Any]:
    rpn.target(T.PROPOSAL_GENERATORS, "proposal generator")
    rpn.only_keys(("in_features", "head", "anchor_generator", "anchor_matcher",
                   "box2box_transform", "batch_size_per_image", "positive_fraction",
                   "pre_nms_topk", "post_nms_topk", "nms_thresh", "min_box_size",
                   "anchor_boundary_thresh", "loss_weight", "box_reg_loss_type",
                   "smooth_l1_beta"))
    head = rpn.child("head")
    head.target(T.RPN_HEADS, "RPN head")
    head.only_keys(("in_channels", "num_anchors", "box_dim", "conv_dims"))
    head.equals("box_dim", 4, "rotated boxes")
    anchors = rpn.child("anchor_generator")
    anchors.target(T.ANCHOR_GENERATORS, "anchor generator")
    anchors.only_keys(("sizes", "aspect_ratios", "strides", "offset"))
    box = rpn.child("box2box_transform")
    box.target(T.BOX_TRANSFORMS, "box transform")
    return {"MODEL": {
        "RPN": {"IN_FEATURES": rpn.list("in_features"),
                "CONV_DIMS": head.list("conv_dims", [-1]),
                "BBOX_REG_WEIGHTS": [float(v) for v in box.list("weights")],
                "PRE_NMS_TOPK_TEST": _test_value(rpn, "pre_nms_topk"),
                "POST_NMS_TOPK_TEST": _test_value(rpn, "post_nms_topk"),
                "NMS_THRESH": rpn.float("nms_thresh")},
        "PROPOSAL_GENERATOR": {"MIN_SIZE": rpn.float("min_box_size", 0.0)},
        "ANCHOR_GENERATOR": {"SIZES": _per_level(anchors, "sizes"),
                             "ASPECT_RATIOS": _per_level(anchors, "aspect_ratios"),
                             "OFFSET": anchors.float("offset", 0.0)},
    }}


def _per_level(node: Node, key: str) -> list[list[float]]:
    """Anchor parameters as one list per level (a flat list is shared by all levels)."""
    values = node.list(key)
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return [values]
    if all(isinstance(v, list) for v in values):
        return values
    raise node.fail(f"must be a list of numbers or one list per level, got {values}", key)


def _test_value(node: Node, key: str) -> int:
    """The test-time entry of a ``(train, test)`` pair."""
    values = node.list(key)
    if len(values) != 2 or not all(isinstance(v, int) for v in values):
        raise node.fail(f"must be [train, test] integers, got {values}", key)
    return values[1]
