"""Standard COCO results (``[{image_id, category_id, bbox, score, segmentation, keypoints}]``).

Boxes are written as ``[x, y, width, height]`` in pixels, masks as compressed RLE (``{"size":
[h, w], "counts": str}``), keypoints as flat ``[x0, y0, s0, x1, ...]`` with the 0.5 px shift that
COCO's integer keypoint coordinates use (as Detectron2's evaluator writes them). Category ids come
from ``category_ids[class_index]``; without a mapping the class index itself is written, as
Detectron2 does for datasets without an id mapping.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from d2common.errors import D2StreamError
from daemon.inference.instances import Instances

COCO_INSTALL_HINT = "pip install 'd2stream[eval]' (pycocotools)"


class EvaluationError(D2StreamError):
    """An annotation file, image folder or result set that cannot be evaluated."""


def mask_utils() -> Any:
    """``pycocotools.mask``, or a clear error saying how to install it."""
    try:
        from pycocotools import mask  # noqa: PLC0415 - optional dependency
    except ImportError:
        raise EvaluationError(f"COCO masks need pycocotools: {COCO_INSTALL_HINT}") from None
    return mask


def encode_masks(masks: np.ndarray) -> list[dict[str, Any]]:
    """``(N, H, W)`` bool masks -> N COCO RLE dicts with ``counts`` as str (JSON-ready)."""
    if len(masks) == 0:
        return []
    rles = mask_utils().encode(np.asfortranarray(np.transpose(masks, (1, 2, 0)).astype(np.uint8)))
    for rle in rles:
        rle["counts"] = rle["counts"].decode("ascii")
    return list(rles)


def instances_to_coco(
    instances: Instances, image_id: int | str, category_ids: Sequence[int] | None = None
) -> list[dict[str, Any]]:
    """COCO result dicts for one image's detections (boxes at original resolution)."""
    n = len(instances)
    if n == 0:
        return []
    boxes = instances.pred_boxes.astype(np.float64)
    xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1).tolist()
    classes = instances.pred_classes.tolist()
    cats = [int(category_ids[c]) if category_ids is not None else int(c) for c in classes]
    scores = instances.scores.astype(np.float64).tolist()
    rles = encode_masks(instances.pred_masks) if instances.pred_masks is not None else None
    keypoints = None
    if instances.pred_keypoints is not None:
        kp = instances.pred_keypoints.astype(np.float64).copy()
        kp[:, :, :2] -= 0.5
        keypoints = kp.reshape(n, -1).tolist()
    results = []
    for k in range(n):
        result: dict[str, Any] = {
            "image_id": image_id, "category_id": cats[k], "bbox": xywh[k], "score": scores[k],
        }
        if rles is not None:
            result["segmentation"] = rles[k]
        if keypoints is not None:
            result["keypoints"] = keypoints[k]
        results.append(result)
    return results


def write_coco_results(
    path: str | os.PathLike[str],
    predictions: Iterable[tuple[int | str, Instances]],
    category_ids: Sequence[int] | None = None,
) -> int:
    """Write ``(image_id, Instances)`` pairs as one COCO results JSON file.

    Args:
        path: output file (parent folders are created).
        predictions: per image, its COCO image id (or a name when there is no annotation file)
            and its detections at original resolution.
        category_ids: COCO category id of each model class index; ``None`` writes class indices.

    Returns:
        The number of results written.
    """
    results: list[dict[str, Any]] = []
    for image_id, instances in predictions:
        results.extend(instances_to_coco(instances, image_id, category_ids))
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(results))
    os.replace(tmp, out)
    return len(results)


class CocoResultsCollector:
    """Accumulate COCO results image by image (``predict --coco-results``), then write them.

    With a COCO annotation file, image ids come from its ``images`` (matched by ``file_name``,
    else by base name) and category ids from its categories sorted by id; without one, the image
    id is the file name and the category id the class index.
    """

    def __init__(self, annotation_file: str | os.PathLike[str] | None = None) -> None:
        self.results: list[dict[str, Any]] = []
        self.category_ids: list[int] | None = None
        self._ids: dict[str, int] = {}
        if annotation_file is not None:
            self._load(Path(annotation_file))

    def _load(self, path: Path) -> None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            images, cats = data["images"], data["categories"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise EvaluationError(f"cannot read COCO annotations {path}: {exc}") from None
        self.category_ids = sorted(int(c["id"]) for c in cats)
        for im in images:
            name = str(im["file_name"])
            self._ids[name] = int(im["id"])
            self._ids.setdefault(Path(name).name, int(im["id"]))

    def image_id(self, path: str | os.PathLike[str]) -> int | str:
        text = str(path)
        if not self._ids:
            return text
        for key in (text, Path(text).name):
            if key in self._ids:
                return self._ids[key]
        raise EvaluationError(f"{text} is not an image of the COCO annotation file")

    def add(self, path: str | os.PathLike[str], instances: Instances) -> None:
        self.results.extend(instances_to_coco(instances, self.image_id(path), self.category_ids))

    def write(self, path: str | os.PathLike[str]) -> int:
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(self.results), encoding="utf-8")
        return len(self.results)
