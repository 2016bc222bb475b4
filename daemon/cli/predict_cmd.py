"""``d2stream predict``: run an exported model on image files or folders."""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import asdict
from pathlib import Path

import cv2

from d2common.errors import D2StreamError
from d2common.image_io import list_images, read_image_bgr
from d2common.metadata import ModelMetadata
from daemon.inference.backends import DEFAULT_BACKEND, LOCAL_BACKEND_CHOICES
from daemon.inference.instances import Instances
from daemon.inference.panoptic import PanopticResult
from daemon.inference.predictor import Predictor
from daemon.inference.records import image_record
from daemon.visualization import draw_instances, draw_panoptic
from daemon.visualization.layout import DISPLAY_MIN_SCORE

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="exported .onnx model")
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders")
    parser.add_argument("--json", metavar="OUT.json", help="write all detections as JSON")
    parser.add_argument("--coco-results", metavar="OUT.json",
                        help="also write standard COCO results (xywh boxes, RLE masks)")
    parser.add_argument("--coco-json", metavar="ANN.json",
                        help="with --coco-results: image and category ids from this COCO "
                        "annotation file (default: file name and class index)")
    parser.add_argument("--output-dir", metavar="DIR", help="write annotated images here")
    parser.add_argument("--draw-threshold", type=float, default=DISPLAY_MIN_SCORE, metavar="S",
                        help=f"annotated images show instances scoring at least S (default "
                             f"{DISPLAY_MIN_SCORE}), one per object; --json always lists all")
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads")
    parser.add_argument("--backend", default=DEFAULT_BACKEND, choices=list(LOCAL_BACKEND_CHOICES),
                        help=f"inference engine (default {DEFAULT_BACKEND}: the fastest "
                             "installed one, measured once and cached)")
    parser.add_argument("--min-size", type=int, default=None,
                        help="override INPUT.MIN_SIZE_TEST (short edge of the network input)")
    parser.add_argument("--max-size", type=int, default=None, help="override INPUT.MAX_SIZE_TEST")


def _annotate(out_dir: Path, path: Path, image, inst: Instances, meta: ModelMetadata,
              panoptic: PanopticResult | None, threshold: float) -> None:
    inst = inst[inst.scores >= threshold]
    if panoptic is not None:
        drawn = draw_panoptic(image, panoptic, meta.class_names, meta.stuff_classes)
    else:
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
        predictor = Predictor(args.model, num_threads=args.threads, backend=args.backend,
                              min_size=args.min_size, max_size=args.max_size)
        coco = _coco_collector(args)
    except D2StreamError as exc:
        log.error("%s", exc)
        return 2
    meta = predictor.metadata
    images, failures = [], 0
    for path in list_images(args.inputs):
        try:
            image = read_image_bgr(path)
            compact = predictor.predict_compact(image)
            inst = compact.to_instances()
            panoptic = compact.to_panoptic(inst) if meta.has_panoptic else \
                compact.to_semantic() if meta.has_sem_seg else None
            if coco is not None:
                coco.add(path, inst)
            if args.output_dir:
                _annotate(Path(args.output_dir), path, image, inst, meta, panoptic,
                          args.draw_threshold)
        except D2StreamError as exc:
            text = str(exc)
            log.error("%s", text if str(path) in text else f"{path}: {text}")
            failures += 1
            continue
        except Exception as exc:  # noqa: BLE001 - one bad file must not end the whole run
            log.error("%s: failed: %s: %s", path, type(exc).__name__, str(exc)[:300])
            failures += 1
            continue
        log.info("%s: %d instances", path, len(inst))
        images.append(image_record(str(path), inst, meta, panoptic))
    if args.json:
        doc = {"model": asdict(meta), "images": images}
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(doc, indent=1), encoding="utf-8")
    if coco is not None:
        log.info("%d COCO results written to %s", coco.write(args.coco_results),
                 args.coco_results)
    if failures:
        log.error("%d input(s) failed", failures)
        return 1
    return 0


def _coco_collector(args: argparse.Namespace):  # -> CocoResultsCollector | None
    if not args.coco_results:
        return None
    from daemon.evaluation.coco_results import CocoResultsCollector  # noqa: PLC0415

    return CocoResultsCollector(args.coco_json)
