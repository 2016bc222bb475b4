"""``d2stream predict``: run an exported model on image files or folders."""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

import cv2

from daemon.errors import D2StreamError
from daemon.inference.image_io import list_images, read_image_bgr
from daemon.inference.instances import Instances
from daemon.inference.metadata import ModelMetadata
from daemon.inference.predictor import Predictor
from daemon.visualization import draw_instances

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="exported .onnx model")
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders")
    parser.add_argument("--json", metavar="OUT.json", help="write all detections as JSON")
    parser.add_argument("--output-dir", metavar="DIR", help="write annotated images here")
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads")
    parser.add_argument("--min-size", type=int, default=None,
                        help="override INPUT.MIN_SIZE_TEST (short edge of the network input)")
    parser.add_argument("--max-size", type=int, default=None, help="override INPUT.MAX_SIZE_TEST")


def instance_records(inst: Instances, meta: ModelMetadata) -> list[dict[str, Any]]:
    """One JSON object per instance: absolute xyxy box, score, 0-based class id and name."""
    records = []
    for i in range(len(inst)):
        cls = int(inst.pred_classes[i])
        records.append({
            "box": [round(float(v), 3) for v in inst.pred_boxes[i]],
            "score": round(float(inst.scores[i]), 6),
            "category_id": cls,
            "category_name": meta.class_names[cls] if cls < len(meta.class_names) else str(cls),
        })
    return records


def image_record(path: Path, inst: Instances, meta: ModelMetadata) -> dict[str, Any]:
    h, w = inst.image_size
    return {"file_name": str(path), "height": h, "width": w,
            "instances": instance_records(inst, meta)}


def _annotate(out_dir: Path, path: Path, image, inst: Instances, meta: ModelMetadata) -> None:
    pairs = [(meta.keypoint_names.index(a), meta.keypoint_names.index(b))
             for a, b in meta.keypoint_connections
             if a in meta.keypoint_names and b in meta.keypoint_names]
    drawn = draw_instances(image, inst, meta.class_names, pairs)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{path.stem}.png"
    if not cv2.imwrite(str(target), drawn):
        raise D2StreamError(f"cannot write {target}")


def run(args: argparse.Namespace) -> int:
    try:
        predictor = Predictor(args.model, num_threads=args.threads, min_size=args.min_size,
                              max_size=args.max_size)
    except D2StreamError as exc:
        log.error("%s", exc)
        return 2
    meta = predictor.metadata
    images, failures = [], 0
    for path in list_images(args.inputs):
        try:
            image = read_image_bgr(path)
            inst = predictor(image)
            if args.output_dir:
                _annotate(Path(args.output_dir), path, image, inst, meta)
        except D2StreamError as exc:
            log.error("%s", exc)
            failures += 1
            continue
        log.info("%s: %d instances", path, len(inst))
        images.append(image_record(path, inst, meta))
    if args.json:
        doc = {"model": asdict(meta), "images": images}
        Path(args.json).write_text(json.dumps(doc, indent=1), encoding="utf-8")
    if failures:
        log.error("%d input(s) failed", failures)
        return 1
    return 0
