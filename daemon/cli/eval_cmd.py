"""``d2stream eval MODEL --coco-json ANN --images DIR``: COCO AP of an exported model."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from daemon.inference.backends import DEFAULT_BACKEND, LOCAL_BACKEND_CHOICES

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, help="exported .onnx model")
    parser.add_argument("--coco-json", type=Path, required=True, metavar="ANN.json",
                        help="COCO annotations; categories sorted by id = model classes 0..K-1")
    parser.add_argument("--images", type=Path, required=True, metavar="DIR",
                        help="folder the annotations' file_name entries are relative to")
    parser.add_argument("--report", type=Path, metavar="OUT.json",
                        help="write the AP report (all metrics, per class) as JSON")
    parser.add_argument("--coco-results", type=Path, metavar="OUT.json",
                        help="write the detections as a standard COCO results file")
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads")
    parser.add_argument("--backend", default=DEFAULT_BACKEND, choices=list(LOCAL_BACKEND_CHOICES),
                        help=f"inference engine (default {DEFAULT_BACKEND}: the fastest "
                             "installed one, measured once and cached)")
    parser.add_argument("--max-images", type=int, default=None, metavar="N",
                        help="evaluate only the first N images (by image id)")
    parser.add_argument("--kpt-oks-sigmas", type=float, nargs="+", metavar="S",
                        help="keypoint OKS sigmas, one per keypoint (default: COCO person)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from daemon.evaluation.runner import evaluate_predictions  # noqa: PLC0415
    from daemon.inference.predictor import Predictor  # noqa: PLC0415

    predictor = Predictor(args.model, num_threads=args.threads, backend=args.backend)
    report = evaluate_predictions(
        lambda bgr: predictor.predict_compact(bgr).to_instances(),
        args.coco_json, args.images, model_name=str(args.model),
        progress=not args.no_progress, max_images=args.max_images,
        kpt_oks_sigmas=args.kpt_oks_sigmas,
    )
    print(report.format_table())
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(json.dumps(report.to_json(), indent=1))
        logger.info("report written to %s", args.report)
    if args.coco_results:
        _write_results(args.coco_results, report.results)
    return 0


def _write_results(path: Path, results: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results))
    logger.info("%d COCO results written to %s", len(results), path)
