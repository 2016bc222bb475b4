"""``d2stream export``: Detectron2 config + checkpoint -> ONNX (imports ``export_tools`` lazily)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from daemon.errors import D2StreamError

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config-file", required=True, metavar="C",
                        help="Detectron2 YAML config (model-zoo file or a training run's dump)")
    parser.add_argument("--weights", required=True, metavar="W",
                        help="checkpoint: .pth (torch zip) or model-zoo .pkl")
    parser.add_argument("--output", "-o", required=True, metavar="M.onnx",
                        help="ONNX file to write")
    parser.add_argument("--classes", metavar="NAMES",
                        help="class names: a text file (one per line) or a comma-separated list")
    parser.add_argument("--keypoints", metavar="NAMES",
                        help="keypoint names: a text file or a comma-separated list")
    parser.add_argument("--stuff-classes", metavar="NAMES",
                        help="panoptic stuff class names: a text file or a comma-separated list")
    parser.add_argument("--name", help="model name stored in the metadata")
    parser.add_argument("--int8", action="store_true",
                        help="write an int8 model (static post-training quantisation; needs "
                             "--calibration)")
    parser.add_argument("--calibration", metavar="DIR",
                        help="folder of representative images for --int8 calibration")
    parser.add_argument("--calibration-images", type=int, default=32, metavar="N",
                        help="use at most N calibration images (default 32)")
    parser.add_argument("--calibration-method", default="minmax",
                        choices=["minmax", "percentile", "entropy"],
                        help="how activation ranges are chosen (default minmax)")
    parser.add_argument("--opts", nargs=argparse.REMAINDER, default=[],
                        help="config overrides KEY VALUE ... (as Detectron2's tools)")


def read_names(spec: str | None) -> list[str] | None:
    """Names from a file (one per line) or a comma-separated list."""
    if not spec:
        return None
    path = Path(spec)
    if path.is_file():
        lines = path.read_text(encoding="utf-8").splitlines()
        return [ln.strip() for ln in lines if ln.strip()]
    return [n.strip() for n in spec.split(",") if n.strip()]


def run(args: argparse.Namespace) -> int:
    if args.int8 and not args.calibration:
        log.error("--int8 needs --calibration DIR (a folder of representative images)")
        return 2
    try:
        out = _export(args)
    except D2StreamError as exc:
        log.error("%s", exc)
        return exc.exit_code
    log.info("exported %s", out)
    return 0


def _export(args: argparse.Namespace) -> Path:
    import tempfile

    from export_tools.export import export_model  # lazy: desktop-only dependency

    def fp32(target: Path) -> Path:
        return export_model(args.config_file, args.weights, target, opts=args.opts,
                            class_names=read_names(args.classes), model_name=args.name,
                            keypoint_names=read_names(args.keypoints),
                            stuff_classes=read_names(args.stuff_classes))

    if not args.int8:
        return fp32(Path(args.output))
    from export_tools.quantize import QuantizeOptions, quantize_model

    with tempfile.TemporaryDirectory(prefix="d2stream-export-") as tmp:
        float_model = fp32(Path(tmp) / "fp32.onnx")
        options = QuantizeOptions(max_images=args.calibration_images,
                                  method=args.calibration_method)
        return quantize_model(float_model, args.output, args.calibration, options)
