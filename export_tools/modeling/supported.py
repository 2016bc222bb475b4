"""What the exporter can build: ``check_supported(cfg)`` refuses anything else by key.

Only the parts of a config that the chosen architecture uses are checked (a RetinaNet config
keeps Detectron2's default ROI head keys, which nothing reads).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from export_tools.config.defaults import DEFAULTS
from export_tools.config.node import Config
from export_tools.config.values import is_finite_number
from export_tools.errors import ConfigError

META_ARCHITECTURES = ("GeneralizedRCNN", "RetinaNet", "PanopticFPN")
RCNN_ARCHITECTURES = ("GeneralizedRCNN", "PanopticFPN")
BACKBONES = (
    "build_resnet_backbone",
    "build_resnet_fpn_backbone",
    "build_retinanet_resnet_fpn_backbone",
)
FPN_BACKBONES = ("build_resnet_fpn_backbone", "build_retinanet_resnet_fpn_backbone")
RESNET_DEPTHS = (18, 34, 50, 101, 152)
NORMS = ("", "FrozenBN", "BN", "SyncBN", "GN", "nnSyncBN", "naiveSyncBN")
RES5_DILATIONS = (1, 2)
FUSE_TYPES = ("sum", "avg")
ROI_HEADS = ("StandardROIHeads", "Res5ROIHeads", "CascadeROIHeads")
BOX_HEADS = ("FastRCNNConvFCHead",)
POOLER_TYPES = ("ROIAlignV2", "ROIAlign")
INPUT_FORMATS = ("BGR", "RGB")


class _Problem:
    """One unsupported setting: the dotted key and a message."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        self.message = message


def check_supported(cfg: Config) -> None:
    """Raise ConfigError(key=...) for the first setting the exporter cannot build.

    The message lists the supported values, and names the other offending keys, if any.
    """
    _require_all_keys(cfg)
    problems = list(_problems(cfg))
    if not problems:
        return
    first = problems[0]
    message = first.message
    if len(problems) > 1:
        others = ", ".join(p.key for p in problems[1:])
        message += f" (also unsupported: {others})"
    raise ConfigError(message, key=first.key, file=cfg.source)


def _require_all_keys(cfg: Config) -> None:
    """A Config built by hand must still hold every default key, as load_config's do."""
    for key in _dotted_keys(DEFAULTS, ""):
        if key not in cfg:
            raise ConfigError(
                "config lacks this key; load configs with load_config, which fills in defaults",
                key=key,
                file=cfg.source,
            )


def _dotted_keys(tree: dict[str, Any], prefix: str) -> Iterator[str]:
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from _dotted_keys(value, f"{prefix}{key}.")
        else:
            yield prefix + key


def _one_of(cfg: Config, key: str, allowed: Sequence[Any], why: str = "") -> Iterator[_Problem]:
    value = cfg.get(key)
    if value not in allowed or isinstance(value, bool) != isinstance(allowed[0], bool):
        listed = ", ".join(repr(a) for a in allowed)
        suffix = f" {why}" if why else ""
        yield _Problem(key, f"unsupported value {value!r}{suffix}; supported: {listed}")


def _problems(cfg: Config) -> Iterator[_Problem]:
    yield from _one_of(cfg, "MODEL.META_ARCHITECTURE", META_ARCHITECTURES)
    yield from _backbone_problems(cfg)
    yield from _input_problems(cfg)
    yield from _one_of(cfg, "MODEL.ANCHOR_GENERATOR.NAME", ("DefaultAnchorGenerator",),
                       "(rotated anchors are not supported)")
    yield from _one_of(cfg, "MODEL.LOAD_PROPOSALS", (False,), "(precomputed proposals)")
    yield from _one_of(cfg, "TEST.AUG.ENABLED", (False,), "(test-time augmentation)")
    arch = cfg.get("MODEL.META_ARCHITECTURE")
    if arch in RCNN_ARCHITECTURES:
        yield from _rcnn_problems(cfg)
    if arch == "RetinaNet":
        yield from _one_of(cfg, "MODEL.RETINANET.NORM", NORMS)
    if arch == "PanopticFPN":
        yield from _one_of(cfg, "MODEL.SEM_SEG_HEAD.NAME", ("SemSegFPNHead",))
        yield from _one_of(cfg, "MODEL.SEM_SEG_HEAD.NORM", NORMS)


def _backbone_problems(cfg: Config) -> Iterator[_Problem]:
    yield from _one_of(cfg, "MODEL.BACKBONE.NAME", BACKBONES)
    yield from _one_of(cfg, "MODEL.RESNETS.DEPTH", RESNET_DEPTHS)
    yield from _one_of(cfg, "MODEL.RESNETS.NORM", NORMS)
    yield from _one_of(cfg, "MODEL.RESNETS.RES5_DILATION", RES5_DILATIONS)
    deform = cfg.get("MODEL.RESNETS.DEFORM_ON_PER_STAGE")
    if any(deform):
        yield _Problem(
            "MODEL.RESNETS.DEFORM_ON_PER_STAGE",
            f"deformable convolution is not supported (got {deform}); supported: all false",
        )
    if cfg.get("MODEL.RESNETS.DEPTH") in (18, 34):
        why = "(ResNet-18/34 require it, as in Detectron2)"
        yield from _one_of(cfg, "MODEL.RESNETS.RES2_OUT_CHANNELS", (64,), why)
        yield from _one_of(cfg, "MODEL.RESNETS.RES5_DILATION", (1,), why)
        yield from _one_of(cfg, "MODEL.RESNETS.NUM_GROUPS", (1,), why)
    if cfg.get("MODEL.BACKBONE.NAME") in FPN_BACKBONES:
        yield from _one_of(cfg, "MODEL.FPN.FUSE_TYPE", FUSE_TYPES)
        yield from _one_of(cfg, "MODEL.FPN.NORM", NORMS)


def _input_problems(cfg: Config) -> Iterator[_Problem]:
    yield from _one_of(cfg, "INPUT.FORMAT", INPUT_FORMATS)
    for key in ("INPUT.MIN_SIZE_TEST", "INPUT.MAX_SIZE_TEST"):
        if cfg.get(key) <= 0:
            yield _Problem(key, f"must be > 0, got {cfg.get(key)}")
    for key in ("MODEL.PIXEL_MEAN", "MODEL.PIXEL_STD"):
        values = cfg.get(key)
        if len(values) != 3 or not all(is_finite_number(v) for v in values):
            yield _Problem(key, f"must be 3 finite numbers (one per colour channel), got {values}")
        elif key == "MODEL.PIXEL_STD" and any(v == 0 for v in values):
            yield _Problem(key, f"must not contain 0 (the input is divided by it), got {values}")


def _rcnn_problems(cfg: Config) -> Iterator[_Problem]:
    yield from _one_of(cfg, "MODEL.PROPOSAL_GENERATOR.NAME", ("RPN",))
    yield from _one_of(cfg, "MODEL.RPN.HEAD_NAME", ("StandardRPNHead",))
    yield from _one_of(cfg, "MODEL.ROI_HEADS.NAME", ROI_HEADS)
    res5 = cfg.get("MODEL.ROI_HEADS.NAME") == "Res5ROIHeads"
    box_heads = ("", *BOX_HEADS) if res5 else BOX_HEADS
    yield from _one_of(cfg, "MODEL.ROI_BOX_HEAD.NAME", box_heads)
    yield from _one_of(cfg, "MODEL.ROI_BOX_HEAD.POOLER_TYPE", POOLER_TYPES)
    if not res5:
        yield from _one_of(cfg, "MODEL.ROI_BOX_HEAD.NORM", NORMS)
    if cfg.get("MODEL.MASK_ON"):
        yield from _one_of(cfg, "MODEL.ROI_MASK_HEAD.NAME", ("MaskRCNNConvUpsampleHead",))
        yield from _one_of(cfg, "MODEL.ROI_MASK_HEAD.POOLER_TYPE", POOLER_TYPES)
        yield from _one_of(cfg, "MODEL.ROI_MASK_HEAD.NORM", NORMS)
    if cfg.get("MODEL.KEYPOINT_ON"):
        if res5:
            yield _Problem(
                "MODEL.KEYPOINT_ON",
                "keypoints need ROI_HEADS.NAME StandardROIHeads or CascadeROIHeads "
                "(Detectron2's Res5ROIHeads has no keypoint head); supported: false",
            )
        yield from _one_of(cfg, "MODEL.ROI_KEYPOINT_HEAD.NAME", ("KRCNNConvDeconvUpsampleHead",))
        yield from _one_of(cfg, "MODEL.ROI_KEYPOINT_HEAD.POOLER_TYPE", POOLER_TYPES)
