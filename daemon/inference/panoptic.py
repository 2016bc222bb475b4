"""Panoptic segmentation: instances and semantic labels combined as Panoptic FPN does.

Instances are added by descending score while their score reaches ``instances_confidence_thresh``;
an instance whose mask overlaps the segments already placed by more than ``overlap_thresh`` of its
area is dropped, otherwise it takes the pixels still free. Then every semantic label except 0 (the
"things" class of the semantic head) becomes a stuff segment on the remaining free pixels, if it
covers at least ``stuff_area_limit`` of them. Segment ids count from 1; 0 is void.

Instance masks are pasted one at a time into their box region, so memory stays at one
``H x W`` int32 image plus one box-sized mask.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Index -> (region (h, w) bool, where it goes in the image).
MaskSource = Callable[[int], tuple[np.ndarray, tuple[slice, slice]]]


@dataclass(frozen=True)
class PanopticSettings:
    """``MODEL.PANOPTIC_FPN.COMBINE`` thresholds and the semantic head's output stride."""

    overlap_thresh: float = 0.5
    stuff_area_limit: int = 4096
    instances_confidence_thresh: float = 0.5
    sem_seg_stride: int = 4

    @classmethod
    def from_metadata(cls, settings: Mapping[str, Any]) -> PanopticSettings:
        known = {k: settings[k] for k in cls.__dataclass_fields__ if k in settings}
        return cls(**known)


@dataclass(frozen=True)
class PanopticResult:
    """``panoptic_seg (H, W)`` int32 segment ids, their ``segments_info`` and ``sem_seg (H, W)``
    int32 semantic labels (argmax over classes), all at the original image resolution.

    Each ``segments_info`` entry: ``id``, ``isthing``, ``category_id`` (thing: class index;
    stuff: semantic label), and ``score`` + ``instance_id`` (things) or ``area`` (stuff).
    """

    panoptic_seg: np.ndarray
    segments_info: list[dict[str, Any]] = field(default_factory=list)
    sem_seg: np.ndarray | None = None


def _add_instances(panoptic: np.ndarray, scores: np.ndarray, classes: np.ndarray,
                   masks: MaskSource, settings: PanopticSettings) -> list[dict[str, Any]]:
    info: list[dict[str, Any]] = []
    for i in np.argsort(-scores, kind="stable"):
        score = float(scores[i])
        if score < settings.instances_confidence_thresh:
            break
        region, where = masks(int(i))
        area = int(region.sum())
        if area == 0:
            continue
        placed = panoptic[where]
        free = placed == 0
        overlap = area - int(np.count_nonzero(region & free))
        if overlap / area > settings.overlap_thresh:
            continue
        segment_id = len(info) + 1
        placed[region & free] = segment_id
        info.append({"id": segment_id, "isthing": True, "score": score,
                     "category_id": int(classes[i]), "instance_id": int(i)})
    return info


def _add_stuff(panoptic: np.ndarray, labels: np.ndarray, next_id: int,
               settings: PanopticSettings) -> list[dict[str, Any]]:
    info: list[dict[str, Any]] = []
    free = panoptic == 0
    for label in np.unique(labels):
        if label == 0:
            continue
        mask = (labels == label) & free
        area = int(np.count_nonzero(mask))
        if area < settings.stuff_area_limit:
            continue
        panoptic[mask] = next_id
        info.append({"id": next_id, "isthing": False, "category_id": int(label), "area": area})
        next_id += 1
    return info


def combine_panoptic(scores: np.ndarray, classes: np.ndarray, masks: MaskSource,
                     sem_labels: np.ndarray, settings: PanopticSettings) -> PanopticResult:
    """Combine instances (``scores (N,)``, ``classes (N,)``, ``masks(i)`` pasted at the image
    resolution) with ``sem_labels (H, W)`` into a panoptic segmentation."""
    panoptic = np.zeros(sem_labels.shape, np.int32)
    info = _add_instances(panoptic, np.asarray(scores), np.asarray(classes), masks, settings)
    info += _add_stuff(panoptic, sem_labels, len(info) + 1, settings)
    return PanopticResult(panoptic, info, sem_labels)


def full_masks(masks: np.ndarray) -> MaskSource:
    """A :data:`MaskSource` over already pasted ``(N, H, W)`` bool masks."""
    whole = (slice(None), slice(None))
    return lambda i: (masks[i], whole)
