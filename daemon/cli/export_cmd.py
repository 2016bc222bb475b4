"""``d2stream export``: Detectron2 config + checkpoint -> ONNX (imports ``export_tools`` lazily)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from d2common.errors import D2StreamError

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config-file", metavar="C",
                        help="Detectron2 YAML config (model-zoo file or a training run's dump)")
    parser.add_argument("--weights", metavar="W",
                        help="checkpoint: .pth (torch zip) or model-zoo .pkl")
    parser.add_argument("--model-zoo", metavar="NAME",
                        help="instead of --config-file/--weights: an official Detectron2 zoo "
                        "model, e.g. COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x (weights "
                        "are downloaded into the cache; see `d2stream zoo list`)")
    parser.add_argument("--output", "-o", required=True, metavar="M.onnx",
                        help="ONNX file to write")
    parser.add_argument("--classes", metavar="NAMES",
                        help="class names: a text file (one per line) or a comma-separated list")
    parser.add_argument("--keypoints", metavar="NAMES",
                        help="keypoint names: a text file or a comma-separated list")
    parser.add_argument("--keypoint-connections", metavar="PAIRS",
                        help="skeleton lines to draw: comma-separated name pairs such as "
                             "'apex-left,left-right,right-apex' (COCO's 17 keypoints: automatic)")
    parser.add_argument("--stuff-classes", metavar="NAMES",
                        help="panoptic stuff class names: a text file or a comma-separated list")
    parser.add_argument("--name", help="model name stored in the metadata")
    parser.add_argument("--external-data", action="store_true",
                        help="write the weights to OUTPUT.data beside the graph (ONNX external "
                             "data); automatic for models over 2 GiB, such as ViTDet-H")
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
    parser.add_argument("--int8-format", default="u8s8", choices=["u8s8", "s8s8"],
                        help="activation x weight types of the int8 model: u8s8 (default) or "
                             "s8s8 (signed activations; docs/aarch64.md compares both)")
    parser.add_argument("--triton-repository", metavar="DIR",
                        help="also write a Triton model repository DIR/<name>/ for the model "
                             "(docs/scaling-out.md)")
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


def read_pairs(spec: str | None) -> list[list[str]] | None:
    """``"a-b,b-c"`` (or a file with one ``a-b`` per line) -> ``[["a", "b"], ["b", "c"]]``."""
    names = read_names(spec)
    return None if names is None else [n.split("-", 1) for n in names]


def run(args: argparse.Namespace) -> int:
    if args.int8 and not args.calibration:
        log.error("--int8 needs --calibration DIR (a folder of representative images)")
        return 2
    if not args.model_zoo and not (args.config_file and args.weights):
        log.error("give --config-file and --weights, or --model-zoo NAME")
        return 2
    code = _export_fp32(args, Path(args.output)) if not args.int8 else _export_int8(args)
    if code == 0 and args.triton_repository:
        from export_tools.triton_repository import write_repository  # lazy: needs onnx

        try:
            folder = write_repository(args.output, args.triton_repository, args.name)
        except D2StreamError as exc:
            log.error("%s", exc)
            return exc.exit_code
        log.info("wrote Triton model repository %s", folder)
    return code


def _export_fp32(args: argparse.Namespace, target: Path) -> int:
    if args.model_zoo:
        from daemon.cli.zoo_cmd import export_from_zoo  # lazy: desktop-only dependency

        return export_from_zoo(args.model_zoo, target)
    from export_tools.export import export_model  # lazy: desktop-only dependency

    try:
        out = export_model(args.config_file, args.weights, target, opts=args.opts,
                           class_names=read_names(args.classes), model_name=args.name,
                           keypoint_names=read_names(args.keypoints),
                           stuff_classes=read_names(args.stuff_classes),
                           keypoint_connections=read_pairs(args.keypoint_connections),
                           external_data=True if args.external_data else None)
    except D2StreamError as exc:
        log.error("%s", exc)
        return exc.exit_code
    log.info("exported %s", out)
    return 0


def _export_int8(args: argparse.Namespace) -> int:
    """Export the float model to a temporary file, then quantise it into ``--output``."""
    import tempfile

    from export_tools.quantize import QuantizeOptions, quantize_model

    with tempfile.TemporaryDirectory(prefix="d2stream-export-") as tmp:
        float_model = Path(tmp) / "fp32.onnx"
        code = _export_fp32(args, float_model)
        if code != 0:
            return code
        options = QuantizeOptions(max_images=args.calibration_images,
                                  method=args.calibration_method,
                                  int8_format=args.int8_format)
        try:
            out = quantize_model(float_model, args.output, args.calibration, options)
        except D2StreamError as exc:
            log.error("%s", exc)
            return exc.exit_code
    log.info("exported %s (int8)", out)
    return 0
