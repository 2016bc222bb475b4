"""JSON-ready records of predictions (``d2stream predict --json``).

Per instance: ``box`` (absolute xyxy pixels), ``score``, ``category_id`` (0-based class index),
``category_name``; proposals (ProposalNetwork) ``objectness_logit``; with masks
``segmentation`` (COCO compressed RLE of the pasted mask); with keypoints ``keypoints``
(``[[x, y, score], ...]`` in pixels). Panoptic models add, per image,
``panoptic.segments_info``: ``id``, ``category_id`` (thing: class index; stuff: the semantic
head's label, as Detectron2 numbers them), ``category_name``, ``isthing``, ``area`` (pixels),
``score`` and ``instance_id`` (things: index into the image's ``instances``) and ``segmentation``
(RLE of the pixels of ``panoptic_seg`` equal to ``id``). SemanticSegmentor models give the same
``panoptic`` record with one stuff segment per semantic label present.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from d2common.metadata import ModelMetadata
from daemon.inference.instances import Instances
from daemon.inference.panoptic import PanopticResult
from daemon.inference.rle import encode_rle


def _name(names: Sequence[str], index: int) -> str:
    return names[index] if 0 <= index < len(names) else str(index)


def instance_records(inst: Instances, meta: ModelMetadata) -> list[dict[str, Any]]:
    """One JSON object per instance, in the model's order (descending score)."""
    records = []
    for i in range(len(inst)):
        cls = int(inst.pred_classes[i])
        record: dict[str, Any] = {
            "box": [round(float(v), 3) for v in inst.pred_boxes[i]],
            "score": round(float(inst.scores[i]), 6),
            "category_id": cls,
            "category_name": _name(meta.class_names, cls),
        }
        if inst.pred_masks is not None:
            record["segmentation"] = encode_rle(inst.pred_masks[i])
        if inst.objectness_logits is not None:
            record["objectness_logit"] = round(float(inst.objectness_logits[i]), 6)
        if inst.pred_keypoints is not None:
            record["keypoints"] = [[round(float(x), 3), round(float(y), 3), round(float(s), 6)]
                                   for x, y, s in inst.pred_keypoints[i]]
        records.append(record)
    return records


def panoptic_record(result: PanopticResult, meta: ModelMetadata) -> dict[str, Any]:
    """``{"segments_info": [...]}`` with one RLE-encoded segment per entry."""
    segments = []
    for seg in result.segments_info:
        mask = result.panoptic_seg == seg["id"]
        cat = int(seg["category_id"])
        names = meta.class_names if seg["isthing"] else meta.stuff_classes
        entry: dict[str, Any] = {"id": int(seg["id"]), "category_id": cat,
                                 "category_name": _name(names, cat),
                                 "isthing": bool(seg["isthing"]),
                                 "area": int(np.count_nonzero(mask))}
        if seg["isthing"]:
            entry["score"] = round(float(seg["score"]), 6)
            entry["instance_id"] = int(seg["instance_id"])
        entry["segmentation"] = encode_rle(mask)
        segments.append(entry)
    return {"segments_info": segments}


def image_record(file_name: str, inst: Instances, meta: ModelMetadata,
                 panoptic: PanopticResult | None = None) -> dict[str, Any]:
    """The record of one image: its size, instances and (panoptic models) segments."""
    h, w = inst.image_size
    record: dict[str, Any] = {"file_name": file_name, "height": h, "width": w,
                              "instances": instance_records(inst, meta)}
    if panoptic is not None:
        record["panoptic"] = panoptic_record(panoptic, meta)
    return record
