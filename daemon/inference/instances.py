"""A lightweight equivalent of detectron2's ``Instances`` for one image.

Field names follow detectron2 (``pred_boxes``, ``scores``, ``pred_classes``, ``pred_masks``,
``pred_keypoints``) so that code written against detectron2 reads the same; arrays are numpy
and validated on creation, like supervision's ``Detections``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np

_OPTIONAL = ("pred_masks", "pred_keypoints", "pred_keypoint_heatmaps", "mask_probs",
             "objectness_logits")


@dataclass(frozen=True)
class Instances:
    """Detections of one image at the resolution given by ``image_size``.

    Attributes:
        image_size: ``(height, width)`` of the image the boxes refer to.
        pred_boxes: ``(N, 4)`` float32 boxes, absolute ``x0, y0, x1, y1`` pixels.
        scores: ``(N,)`` float32 confidence scores, sorted descending by the model.
        pred_classes: ``(N,)`` int64 0-based class indices.
        pred_masks: optional ``(N, H, W)`` bool masks pasted into the image.
        pred_keypoints: optional ``(N, K, 3)`` float32 ``(x, y, score)`` per keypoint.
        pred_keypoint_heatmaps: optional ``(N, K, S, S)`` float32 raw heatmaps.
        mask_probs: optional ``(N, M, M)`` float32 mask probabilities before pasting.
        objectness_logits: optional ``(N,)`` float32: a ProposalNetwork's proposals, whose
            boxes (``proposal_boxes``, the same array as ``pred_boxes``) come with these logits.
    """

    image_size: tuple[int, int]
    pred_boxes: np.ndarray
    scores: np.ndarray
    pred_classes: np.ndarray
    pred_masks: np.ndarray | None = None
    pred_keypoints: np.ndarray | None = None
    pred_keypoint_heatmaps: np.ndarray | None = None
    mask_probs: np.ndarray | None = None
    objectness_logits: np.ndarray | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        h, w = (int(v) for v in self.image_size)
        object.__setattr__(self, "image_size", (h, w))
        boxes = np.asarray(self.pred_boxes, dtype=np.float32).reshape(-1, 4)
        object.__setattr__(self, "pred_boxes", boxes)
        n = boxes.shape[0]
        object.__setattr__(self, "scores", _check("scores", self.scores, np.float32, (n,)))
        object.__setattr__(
            self, "pred_classes", _check("pred_classes", self.pred_classes, np.int64, (n,))
        )
        if self.pred_masks is not None:
            masks = _check("pred_masks", self.pred_masks, np.bool_, (n, h, w))
            object.__setattr__(self, "pred_masks", masks)
        for name in ("pred_keypoints", "pred_keypoint_heatmaps", "mask_probs",
                     "objectness_logits"):
            value = getattr(self, name)
            if value is not None:
                arr = np.asarray(value, dtype=np.float32)
                if arr.shape[:1] != (n,):
                    raise ValueError(f"Instances.{name}: expected {n} rows, got shape {arr.shape}")
                object.__setattr__(self, name, arr)

    def __len__(self) -> int:
        return int(self.pred_boxes.shape[0])

    @property
    def proposal_boxes(self) -> np.ndarray:
        """Detectron2's name for a ProposalNetwork's boxes (``pred_boxes``)."""
        return self.pred_boxes

    def __getitem__(self, index: Any) -> Instances:
        """Select instances by an int, slice, boolean mask or index array."""
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        kw = {"pred_boxes": self.pred_boxes[index], "scores": self.scores[index]}
        kw["pred_classes"] = self.pred_classes[index]
        for name in _OPTIONAL:
            value = getattr(self, name)
            kw[name] = None if value is None else value[index]
        return replace(self, **kw)

    def has(self, name: str) -> bool:
        """True when the field exists and is set (detectron2's ``Instances.has``)."""
        return name in {f.name for f in fields(self)} and getattr(self, name) is not None

    def get_fields(self) -> dict[str, np.ndarray]:
        """The set per-instance fields, keyed by detectron2 field name."""
        names = ("pred_boxes", "scores", "pred_classes", *_OPTIONAL)
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}

    @classmethod
    def empty(cls, image_size: tuple[int, int]) -> Instances:
        return cls(image_size, np.zeros((0, 4), np.float32), np.zeros(0, np.float32),
                   np.zeros(0, np.int64))


def _check(name: str, value: Any, dtype: Any, shape: tuple[int, ...]) -> np.ndarray:
    arr = np.asarray(value)
    if arr.shape != shape:
        raise ValueError(f"Instances.{name}: expected shape {shape}, got {arr.shape}")
    return arr.astype(dtype, copy=False)


def to_detectron2(instances: Instances) -> Any:
    """Convert to detectron2's own ``Instances`` (requires detectron2 and torch).

    Raises:
        ImportError: when detectron2 is not importable.
    """
    import torch  # noqa: PLC0415 - optional, device side never needs it
    from detectron2.structures import Boxes
    from detectron2.structures import Instances as D2Instances

    out = D2Instances(instances.image_size)
    out.pred_boxes = Boxes(torch.from_numpy(instances.pred_boxes.copy()))
    out.scores = torch.from_numpy(instances.scores.copy())
    out.pred_classes = torch.from_numpy(instances.pred_classes.copy())
    if instances.pred_masks is not None:
        out.pred_masks = torch.from_numpy(instances.pred_masks.copy())
    if instances.pred_keypoints is not None:
        out.pred_keypoints = torch.from_numpy(instances.pred_keypoints.copy())
    return out
