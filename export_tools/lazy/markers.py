"""What the Python tags of a LazyConfig YAML become: inert data, never the objects they name."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# ``!!python/name:`` values we accept, each a class or function Detectron2's LazyConfig models
# name. They become a ``NameRef``; the marker is all the exporter ever sees of them.
ALLOWED_NAMES = frozenset({
    "detectron2.modeling.backbone.resnet.BottleneckBlock",
    "detectron2.modeling.backbone.resnet.BasicBlock",
    "detectron2.modeling.backbone.resnet.BasicStem",
    "detectron2.modeling.backbone.regnet.ResBottleneckBlock",
    "detectron2.modeling.backbone.regnet.BottleneckTransform",
    "detectron2.modeling.backbone.regnet.SimpleStem",
    "detectron2.modeling.backbone.regnet.ResStem",
    "detectron2.modeling.backbone.vit.get_vit_lr_decay_rate",
    "torch.nn.modules.normalization.LayerNorm",
    "torch.nn.LayerNorm",
    "torch.nn.modules.activation.GELU",
    "torch.nn.GELU",
})
SHAPE_SPEC_NAMES = frozenset({"detectron2.layers.shape_spec.ShapeSpec",
                              "detectron2.layers.ShapeSpec"})
PARTIAL_NAMES = frozenset({"functools.partial"})
LAMBDA_SUFFIX = ".<lambda>"


@dataclass(frozen=True)
class NameRef:
    """``!!python/name:<name>`` for an allow-listed name."""

    name: str

    @property
    def short(self) -> str:
        return self.name.rsplit(".", 1)[-1]


@dataclass(frozen=True)
class LambdaRef:
    """A lambda of the config: ``!!python/name:...<lambda>`` in a saved YAML (its body is lost),
    or a lambda a ``.py`` config defines (its body read by :mod:`export_tools.lazy.lambdas`).

    ``norm``: the name Detectron2's ``get_norm`` gives the layer the body makes (e.g.
    ``"naiveSyncBN_N"`` for ``lambda c: NaiveSyncBatchNorm(c, stats_mode="N")``); empty when the
    body is unknown or is not such a norm. ``refusal``: why a body that was read is not one.
    """

    name: str
    norm: str = ""
    refusal: str = ""


@dataclass(frozen=True)
class Refused:
    """A tag we do not accept; reported with its key path once the tree is walked."""

    tag: str
    line: int


@dataclass
class ShapeSpecValue:
    """``detectron2.layers.ShapeSpec(channels, height, width, stride)`` as data."""

    fields: dict[str, Any] = field(default_factory=dict)


@dataclass
class PartialValue:
    """``functools.partial(func, *args, **kwargs)`` as data."""

    func: Any
    args: list[Any]
    kwargs: dict[str, Any]
