"""Backbones: ResNet / ResNeXt bottom-up and FPN on top."""

from export_tools.modeling.backbone.base import Feature
from export_tools.modeling.backbone.build import build_backbone

__all__ = ["Feature", "build_backbone"]
