"""What backbone stages pass to each other: a tensor with its channel count and stride."""

from __future__ import annotations

from dataclasses import dataclass

from export_tools.graph import Tensor


@dataclass(frozen=True)
class Feature:
    """A feature map ``(1, channels, H / stride, W / stride)`` in the graph."""

    tensor: Tensor
    channels: int
    stride: int
