"""Run a model over a COCO-format image set and compute its AP (``d2stream eval``)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from d2common.errors import InputImageError
from daemon import __version__
from daemon.evaluation.coco_eval import METRICS, CocoDataset, evaluate_results
from daemon.evaluation.coco_results import EvaluationError, instances_to_coco
from daemon.inference.instances import Instances

logger = logging.getLogger(__name__)

PredictFn = Callable[[np.ndarray], Instances]


@dataclass
class EvalReport:
    """AP of one model on one annotated image set (metrics in percent, ``None`` = undefined)."""

    model: str
    annotations: str
    images_dir: str
    num_images: int
    num_detections: int
    metrics: dict[str, dict[str, Any]]
    seconds: float
    results: list[dict[str, Any]] = field(default_factory=list, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "d2stream": __version__, "model": self.model, "annotations": self.annotations,
            "images": self.images_dir, "num_images": self.num_images,
            "num_detections": self.num_detections, "seconds": round(self.seconds, 3),
            **self.metrics,
        }

    def format_table(self) -> str:
        """A fixed-width table: one row per task, one column per metric."""
        names = ("AP", "AP50", "AP75", "APs", "APm", "APl")
        lines = [f"{'task':<10}" + "".join(f"{n:>8}" for n in names)]
        for task, values in self.metrics.items():
            cells = [_fmt(values.get(n)) if n in METRICS[task] else "" for n in names]
            lines.append(f"{task:<10}" + "".join(f"{c:>8}" for c in cells))
        lines.append(f"{self.num_images} images, {self.num_detections} detections, "
                     f"{self.seconds:.1f} s")
        return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def read_image(path: Path) -> np.ndarray:
    """BGR uint8 ``(H, W, 3)``, as ``cv2.imread`` gives it (what Detectron2 users feed)."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise InputImageError(f"cannot read image {path} (missing or not an image)")
    return image


def predict_dataset(
    predict: PredictFn,
    dataset: CocoDataset,
    images_dir: Path,
    *,
    progress: bool = True,
    max_images: int | None = None,
) -> tuple[list[dict[str, Any]], set[str], int]:
    """Predict every annotated image; returns (COCO results, output kinds seen, images done)."""
    images = dataset.images[:max_images] if max_images else dataset.images
    results: list[dict[str, Any]] = []
    kinds: set[str] = set()
    for im in tqdm(images, desc="eval", unit="img", disable=not progress):
        bgr = read_image(images_dir / im.file_name)
        if bgr.shape[:2] != (im.height, im.width):
            logger.warning("%s is %dx%d but the annotations say %dx%d", im.file_name,
                           bgr.shape[1], bgr.shape[0], im.width, im.height)
        instances = predict(bgr)
        kinds.add("bbox")
        if instances.pred_masks is not None:
            kinds.add("segm")
        if instances.pred_keypoints is not None:
            kinds.add("keypoints")
        results.extend(instances_to_coco(instances, im.id, dataset.category_ids))
    return results, kinds, len(images)


def evaluate_predictions(
    predict: PredictFn,
    annotation_file: Path,
    images_dir: Path,
    *,
    model_name: str = "",
    progress: bool = True,
    max_images: int | None = None,
    kpt_oks_sigmas: Sequence[float] | None = None,
) -> EvalReport:
    """Evaluate any ``BGR image -> Instances`` function on a COCO annotation file."""
    start = time.perf_counter()
    dataset = CocoDataset(annotation_file)
    if not Path(images_dir).is_dir():
        raise EvaluationError(f"image folder {images_dir} does not exist")
    results, kinds, n_images = predict_dataset(
        predict, dataset, Path(images_dir), progress=progress, max_images=max_images
    )
    image_ids = [im.id for im in dataset.images[:n_images]]
    tasks = ["bbox"]
    if "segm" in kinds and dataset.has_masks():
        tasks.append("segm")
    if "keypoints" in kinds and dataset.has_keypoints():
        tasks.append("keypoints")
    metrics = {
        task: evaluate_results(dataset, results, task, kpt_oks_sigmas, image_ids)
        for task in tasks
    }
    return EvalReport(
        model=model_name, annotations=str(annotation_file), images_dir=str(images_dir),
        num_images=n_images, num_detections=len(results), metrics=metrics,
        seconds=time.perf_counter() - start, results=results,
    )


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


def collect_images(paths: Sequence[Path]) -> list[Path]:
    """Image files named directly or found (non-recursively, sorted) in the given folders."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.is_file():
            found.append(path)
        else:
            raise InputImageError(f"{path} is neither an image file nor a folder")
    if not found:
        raise InputImageError(f"no images in {', '.join(map(str, paths))}")
    return found
