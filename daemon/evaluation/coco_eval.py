"""COCO box / mask / keypoint AP with pycocotools, computed the way Detectron2's evaluator does.

Same conventions as Detectron2's ``COCOEvaluator``: metrics are percentages; mask AP is computed
with the ``bbox`` field removed from the results so that COCO uses mask areas for the
small/medium/large ranges; keypoint AP uses COCO's 17 person sigmas unless others are given.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from daemon.evaluation.coco_results import COCO_INSTALL_HINT, EvaluationError

logger = logging.getLogger(__name__)

METRICS: dict[str, tuple[str, ...]] = {
    "bbox": ("AP", "AP50", "AP75", "APs", "APm", "APl"),
    "segm": ("AP", "AP50", "AP75", "APs", "APm", "APl"),
    "keypoints": ("AP", "AP50", "AP75", "APm", "APl"),
}


def _pycocotools() -> tuple[Any, Any]:
    try:
        from pycocotools.coco import COCO  # noqa: PLC0415 - optional dependency
        from pycocotools.cocoeval import COCOeval  # noqa: PLC0415
    except ImportError:
        raise EvaluationError(f"d2stream eval needs pycocotools: {COCO_INSTALL_HINT}") from None
    return COCO, COCOeval


@dataclass(frozen=True)
class CocoImage:
    id: int
    file_name: str
    height: int
    width: int


class CocoDataset:
    """A COCO annotation file: its images, and category ids sorted = model class indices."""

    def __init__(self, annotation_file: Path) -> None:
        coco_cls, _ = _pycocotools()
        self.path = Path(annotation_file)
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError) as exc:
            raise EvaluationError(f"cannot read COCO annotations {self.path}: {exc}") from None
        missing = [k for k in ("images", "annotations", "categories") if k not in data]
        if missing:
            raise EvaluationError(f"{self.path}: not a COCO annotation file (no {missing})")
        with contextlib.redirect_stdout(io.StringIO()):
            self.coco = coco_cls()
            self.coco.dataset = data
            self.coco.createIndex()
        cats = sorted(data["categories"], key=lambda c: c["id"])
        self.category_ids: list[int] = [int(c["id"]) for c in cats]
        self.class_names: list[str] = [str(c.get("name", c["id"])) for c in cats]
        self.keypoint_names: list[str] = list(cats[0].get("keypoints", [])) if cats else []
        self.images = [
            CocoImage(int(im["id"]), str(im["file_name"]), int(im["height"]), int(im["width"]))
            for im in sorted(data["images"], key=lambda im: im["id"])
        ]

    def has_masks(self) -> bool:
        return any("segmentation" in a for a in self.coco.dataset["annotations"])

    def has_keypoints(self) -> bool:
        return any(a.get("num_keypoints", 0) > 0 for a in self.coco.dataset["annotations"])


def evaluate_results(
    dataset: CocoDataset,
    results: list[dict[str, Any]],
    iou_type: str,
    kpt_oks_sigmas: Sequence[float] | None = None,
    image_ids: Sequence[int] | None = None,
) -> dict[str, Any]:
    """COCOeval one task; returns ``{"AP": .., "AP50": .., ..., "per_class": {name: AP}}``.

    Values are percentages, ``None`` where COCO cannot compute them (no detections, or no
    ground truth in an area range).
    """
    _, cocoeval_cls = _pycocotools()
    metrics = METRICS[iou_type]
    if not results:
        logger.warning("no %s predictions on any image; AP is undefined", iou_type)
        return {m: None for m in metrics} | {"per_class": {}}
    if iou_type == "segm":
        results = [{k: v for k, v in r.items() if k != "bbox"} for r in results]
    else:
        results = copy.deepcopy(results)
    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        coco_dt = dataset.coco.loadRes(results)
        coco_eval = cocoeval_cls(dataset.coco, coco_dt, iou_type)
        if image_ids is not None:
            coco_eval.params.imgIds = list(image_ids)
        if iou_type == "keypoints":
            _set_oks_sigmas(coco_eval, results, kpt_oks_sigmas)
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    logger.debug("COCOeval %s:\n%s", iou_type, log.getvalue())
    report: dict[str, Any] = {m: _pct(coco_eval.stats[i]) for i, m in enumerate(metrics)}
    report["per_class"] = _per_class_ap(coco_eval, dataset) if iou_type != "keypoints" else {}
    return report


def _pct(value: float) -> float | None:
    return float(value * 100) if value >= 0 and math.isfinite(value) else None


def _set_oks_sigmas(coco_eval: Any, results: list[dict[str, Any]],
                    sigmas: Sequence[float] | None) -> None:
    num_kp = len(results[0]["keypoints"]) // 3
    if sigmas:
        coco_eval.params.kpt_oks_sigmas = np.asarray(sigmas, dtype=np.float64)
    if len(coco_eval.params.kpt_oks_sigmas) != num_kp:
        raise EvaluationError(
            f"the model predicts {num_kp} keypoints but {len(coco_eval.params.kpt_oks_sigmas)} "
            "OKS sigmas are set (COCO's defaults are for its 17 person keypoints); "
            "give one sigma per keypoint with --kpt-oks-sigmas"
        )


def _per_class_ap(coco_eval: Any, dataset: CocoDataset) -> dict[str, float | None]:
    # precision: (iou thresholds, recall points, classes, area ranges, max dets)
    precision = coco_eval.eval["precision"]
    out: dict[str, float | None] = {}
    for k, name in enumerate(dataset.class_names[: precision.shape[2]]):
        p = precision[:, :, k, 0, -1]
        p = p[p > -1]
        out[name] = float(np.mean(p) * 100) if p.size else None
    return out
