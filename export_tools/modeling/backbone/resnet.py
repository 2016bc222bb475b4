"""ResNet / ResNeXt (Detectron2 ``build_resnet_backbone``): stem, basic and bottleneck blocks."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from export_tools.config import Config
from export_tools.graph import GraphBuilder, Tensor
from export_tools.modeling.backbone.base import Feature
from export_tools.modeling.checks import NORMS, Problem, one_of
from export_tools.modeling.deform_conv import DeformSpec, deform_conv_block
from export_tools.modeling.layers import conv2d, max_pool
from export_tools.modeling.weights import WeightStore

BLOCKS_PER_STAGE = {18: [2, 2, 2, 2], 34: [3, 4, 6, 3], 50: [3, 4, 6, 3], 101: [3, 4, 23, 3],
                    152: [3, 8, 36, 3]}
STAGE_NAMES = ("res2", "res3", "res4", "res5")
RES5_DILATIONS = (1, 2)


@dataclass(frozen=True)
class StageSpec:
    """One ``resN`` stage: its blocks' channel counts, first stride and dilation."""

    name: str
    num_blocks: int
    in_channels: int
    out_channels: int
    bottleneck_channels: int
    first_stride: int
    dilation: int
    deform: bool = False  # every block's 3x3 conv is deformable (DEFORM_ON_PER_STAGE)


@dataclass(frozen=True)
class ResNetSpec:
    depth: int
    norm: str
    stem_out_channels: int
    num_groups: int
    stride_in_1x1: bool
    stages: tuple[StageSpec, ...]
    deform_modulated: bool = False
    deform_groups: int = 1

    @property
    def basic(self) -> bool:
        return self.depth in (18, 34)


def resnet_problems(cfg: Config) -> Iterator[Problem]:
    """The ``MODEL.RESNETS`` settings this ResNet cannot build."""
    yield from one_of(cfg, "MODEL.RESNETS.DEPTH", tuple(BLOCKS_PER_STAGE))
    yield from one_of(cfg, "MODEL.RESNETS.NORM", NORMS)
    yield from one_of(cfg, "MODEL.RESNETS.RES5_DILATION", RES5_DILATIONS)
    deform = cfg.get("MODEL.RESNETS.DEFORM_ON_PER_STAGE")
    if len(deform) != len(STAGE_NAMES):
        yield Problem("MODEL.RESNETS.DEFORM_ON_PER_STAGE",
                      f"must hold one bool per stage res2..res5, got {deform}")
    elif any(deform) and cfg.get("MODEL.RESNETS.DEPTH") in (18, 34):
        yield Problem("MODEL.RESNETS.DEFORM_ON_PER_STAGE",
                      "deformable convolution is supported with bottleneck blocks only "
                      "(ResNet-50 and deeper), as in Detectron2")
    elif deform[-1] and cfg.get("MODEL.ROI_HEADS.NAME") == "Res5ROIHeads":
        yield Problem("MODEL.RESNETS.DEFORM_ON_PER_STAGE",
                      "a deformable res5 is not supported in the Res5ROIHeads (nor by Detectron2)")
    groups = cfg.get("MODEL.RESNETS.DEFORM_NUM_GROUPS")
    if any(deform) and (not isinstance(groups, int) or groups < 1
                        or cfg.get("MODEL.RESNETS.NUM_GROUPS")
                        * cfg.get("MODEL.RESNETS.WIDTH_PER_GROUP") % groups):
        yield Problem("MODEL.RESNETS.DEFORM_NUM_GROUPS",
                      f"must be >= 1 and divide the bottleneck channels, got {groups}")
    if cfg.get("MODEL.RESNETS.DEPTH") in (18, 34):
        why = "(ResNet-18/34 require it, as in Detectron2)"
        yield from one_of(cfg, "MODEL.RESNETS.RES2_OUT_CHANNELS", (64,), why)
        yield from one_of(cfg, "MODEL.RESNETS.RES5_DILATION", (1,), why)
        yield from one_of(cfg, "MODEL.RESNETS.NUM_GROUPS", (1,), why)


def resnet_spec_from_config(cfg: Config) -> ResNetSpec:
    """All four stages as the config describes them (callers keep the ones they need)."""
    r = cfg.MODEL.RESNETS
    in_ch, out_ch = r.STEM_OUT_CHANNELS, r.RES2_OUT_CHANNELS
    bottleneck = r.NUM_GROUPS * r.WIDTH_PER_GROUP
    stages = []
    for idx, (name, n) in enumerate(zip(STAGE_NAMES, BLOCKS_PER_STAGE[r.DEPTH])):
        dilation = r.RES5_DILATION if name == "res5" else 1
        first_stride = 1 if idx == 0 or (name == "res5" and dilation == 2) else 2
        stages.append(StageSpec(name, n, in_ch, out_ch, bottleneck, first_stride, dilation,
                                bool(r.DEFORM_ON_PER_STAGE[idx])))
        in_ch, out_ch, bottleneck = out_ch, out_ch * 2, bottleneck * 2
    return ResNetSpec(r.DEPTH, r.NORM, r.STEM_OUT_CHANNELS, r.NUM_GROUPS, r.STRIDE_IN_1X1,
                      tuple(stages), bool(r.DEFORM_MODULATED), int(r.DEFORM_NUM_GROUPS))


def build_stem(g: GraphBuilder, w: WeightStore, x: Tensor, prefix: str, in_ch: int,
               spec: ResNetSpec) -> Feature:
    """7x7/2 conv + norm + ReLU + 3x3/2 max-pool: ``(1, 3, H, W)`` -> stride 4."""
    with g.scope("stem"):
        y = conv2d(g, w, x, f"{prefix}.stem.conv1", in_ch, spec.stem_out_channels, 7, stride=2,
                   padding=3, norm=spec.norm, relu=True)
        y = max_pool(g, y, kernel=3, stride=2, padding=1)
    return Feature(y, spec.stem_out_channels, 4)


def build_stage(g: GraphBuilder, w: WeightStore, x: Feature, prefix: str, stage: StageSpec,
                spec: ResNetSpec) -> Feature:
    """All blocks of one stage; ``prefix`` is the module path of the stage (e.g. ``...res3``)."""
    y, in_ch = x.tensor, stage.in_channels
    stride_total = x.stride * stage.first_stride
    with g.scope(stage.name):
        for i in range(stage.num_blocks):
            stride = stage.first_stride if i == 0 else 1
            block = _basic_block if spec.basic else _bottleneck_block
            y = block(g, w, y, f"{prefix}.{i}", in_ch, stage, stride, spec)
            in_ch = stage.out_channels
    return Feature(y, stage.out_channels, stride_total)


def _shortcut(g: GraphBuilder, w: WeightStore, x: Tensor, prefix: str, in_ch: int, out_ch: int,
              stride: int, norm: str) -> Tensor:
    if in_ch == out_ch:
        return x
    return conv2d(g, w, x, f"{prefix}.shortcut", in_ch, out_ch, 1, stride=stride, norm=norm)


def _basic_block(g: GraphBuilder, w: WeightStore, x: Tensor, prefix: str, in_ch: int,
                 stage: StageSpec, stride: int, spec: ResNetSpec) -> Tensor:
    out_ch = stage.out_channels
    short = _shortcut(g, w, x, prefix, in_ch, out_ch, stride, spec.norm)
    y = conv2d(g, w, x, f"{prefix}.conv1", in_ch, out_ch, 3, stride=stride, padding=1,
               norm=spec.norm, relu=True)
    y = conv2d(g, w, y, f"{prefix}.conv2", out_ch, out_ch, 3, padding=1, norm=spec.norm)
    return g.op("Relu", [g.op("Add", [y, short], hint="residual")], hint="relu")


def _bottleneck_block(g: GraphBuilder, w: WeightStore, x: Tensor, prefix: str, in_ch: int,
                      stage: StageSpec, stride: int, spec: ResNetSpec) -> Tensor:
    out_ch, mid, dil = stage.out_channels, stage.bottleneck_channels, stage.dilation
    short = _shortcut(g, w, x, prefix, in_ch, out_ch, stride, spec.norm)
    s1x1, s3x3 = (stride, 1) if spec.stride_in_1x1 else (1, stride)
    y = conv2d(g, w, x, f"{prefix}.conv1", in_ch, mid, 1, stride=s1x1, norm=spec.norm, relu=True)
    if stage.deform:
        deform = DeformSpec(mid, mid, s3x3, dil, dil, spec.num_groups, spec.deform_groups,
                            spec.deform_modulated)
        y = deform_conv_block(g, w, y, prefix, deform, spec.norm)
    else:
        y = conv2d(g, w, y, f"{prefix}.conv2", mid, mid, 3, stride=s3x3, padding=dil,
                   dilation=dil, groups=spec.num_groups, norm=spec.norm, relu=True)
    y = conv2d(g, w, y, f"{prefix}.conv3", mid, out_ch, 1, norm=spec.norm)
    return g.op("Relu", [g.op("Add", [y, short], hint="residual")], hint="relu")


def build_resnet(g: GraphBuilder, w: WeightStore, image: Tensor, prefix: str, in_ch: int,
                 spec: ResNetSpec, out_features: list[str]) -> dict[str, Feature]:
    """Stem and the stages up to the last one in ``out_features``; returns those features."""
    last = max(STAGE_NAMES.index(f) for f in out_features)
    feats: dict[str, Feature] = {}
    x = build_stem(g, w, image, prefix, in_ch, spec)
    for stage in spec.stages[: last + 1]:
        x = build_stage(g, w, x, f"{prefix}.{stage.name}", stage, spec)
        feats[stage.name] = x
    return {name: feats[name] for name in out_features}
