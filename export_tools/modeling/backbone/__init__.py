"""Backbones: ResNet / ResNeXt with FPN; LazyConfig ones (RegNet, ViTDet, MViTv2)."""

from export_tools.modeling.backbone.base import Feature
from export_tools.modeling.backbone.build import build_backbone
from export_tools.modeling.backbone.lazy import build_lazy_backbone  # noqa: F401 (registers)

__all__ = ["Feature", "build_backbone"]
