"""``d2stream verify --config-file C --weights W M.onnx IMAGES...``: parity with Detectron2.

Runs the original model with Detectron2's ``DefaultPredictor`` and the exported model with
d2stream on the same images, and reports per image the largest box / score / keypoint
differences and the smallest mask IoU of matched instances, with a pass/fail verdict. Exit
status: 0 all images within tolerance, 1 some are not, 3 torch/detectron2 missing.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, help="exported .onnx model")
    parser.add_argument("images", type=Path, nargs="+", help="image files or folders")
    parser.add_argument("--config-file", type=Path, required=True, help="Detectron2 YAML config")
    parser.add_argument("--weights", type=Path, required=True, help="checkpoint (.pth / .pkl)")
    parser.add_argument("--report", type=Path, metavar="OUT.json", help="write the JSON report")
    parser.add_argument("--device", default="cpu", help="torch device of the reference model")
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads")
    parser.add_argument("--score-tol", type=float, default=1e-4)
    parser.add_argument("--box-tol", type=float, default=0.1, help="pixels, original scale")
    parser.add_argument("--mask-iou", type=float, default=0.99, help="minimum mask IoU")
    parser.add_argument("--keypoint-tol", type=float, default=0.1, help="pixels")


def run(args: argparse.Namespace) -> int:
    from daemon.evaluation.parity import Tolerances, compare_many  # noqa: PLC0415
    from daemon.evaluation.reference import load_reference, require_reference  # noqa: PLC0415
    from daemon.evaluation.runner import collect_images, read_image  # noqa: PLC0415

    require_reference()  # before any slow work: say what to install
    images = collect_images(args.images)
    from daemon.inference.predictor import Predictor  # noqa: PLC0415

    reference, thresholds = load_reference(args.config_file, args.weights, args.device)
    ours = Predictor(args.model, num_threads=args.threads)
    refs, preds = [], []
    agreements: dict[str, list[float]] = {"sem_seg": [], "panoptic_seg": []}
    for path in images:
        bgr = read_image(path)
        refs.append(reference(bgr))
        compact = ours.predict_compact(bgr)
        preds.append(compact.to_instances())
        for kind, value in _label_agreements(refs[-1].extra, compact, preds[-1]).items():
            agreements[kind].append(value)
    tol = Tolerances(args.score_tol, args.box_tol, args.mask_iou, args.keypoint_tol)
    report = compare_many([str(p) for p in images], refs, preds, tol, thresholds,
                          model=str(args.model), reference=f"detectron2 {args.config_file}")
    print(report.format_table())
    labels_ok = True
    for kind, values in agreements.items():
        if values:
            print(f"{kind} pixel agreement: min {min(values):.6f} over {len(values)} "
                  f"image(s) (need >= {PIXEL_AGREEMENT})")
            labels_ok = labels_ok and min(values) >= PIXEL_AGREEMENT
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(report.dumps())
    return 0 if report.passed and labels_ok else 1


PIXEL_AGREEMENT = 0.999


def _label_agreements(ref_extra: dict, compact, instances=None) -> dict[str, float]:
    """Fractions of pixels where our semantic labels / panoptic segment ids equal Detectron2's
    (only those the reference has); ``instances``: ``compact``'s, masks already pasted."""
    out: dict[str, float] = {}
    if "sem_seg_labels" in ref_extra:
        out["sem_seg"] = _agreement(ref_extra["sem_seg_labels"], compact.sem_seg_labels())
    if "panoptic_seg" in ref_extra:
        ours = (compact.to_panoptic(instances).panoptic_seg if compact.mask_probs is not None
                else None)
        out["panoptic_seg"] = _agreement(ref_extra["panoptic_seg"], ours)
    return out


def _agreement(ref, ours) -> float:
    if ours is None or ours.shape != ref.shape:
        return 0.0
    return float((ours == ref).mean())
