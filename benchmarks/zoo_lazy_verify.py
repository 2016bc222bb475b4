"""``d2stream verify``'s comparison for one LazyConfig ``.py`` model-zoo file, synthetic weights.

    PYTHONPATH=. D2_PYTHON -m benchmarks.zoo_lazy_verify CONFIG.py OUT_DIR [--side 320]

What ``benchmarks/zoo_verify.sh`` does for a YAML config, for a LazyConfig file: the test-time
resize is set to ``--side`` on both sides (and ViTDet's square padding with the ViT's ``img_size``,
as ``benchmarks.lazy_bench`` does), synthetic calibrated weights are written to ``OUT_DIR/w.pkl``
(:mod:`benchmarks.synthetic_checkpoint`), our graph is built from our reading of the file
(``OUT_DIR/m.onnx``), Detectron2 builds its own from the same file with ``LazyConfig.load`` and
``instantiate`` and loads the same weights, and both run on the verify images; the parity report
goes to ``OUT_DIR/report.json``. Exit status: 0 within tolerance, 1 not, 2 refused by our reader.
Needs torch and detectron2 (run it with the Detectron2 venv's python).
"""

from __future__ import annotations

import argparse
import logging
import pickle
import sys
from pathlib import Path
from typing import Any

from export_tools.config import Config

SIDE = 320
FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"
IMAGES = (FIXTURES / "faster_rcnn_R_50_FPN" / "image_0.png",
          FIXTURES / "mask_rcnn_R_50_FPN_demo" / "image_1.png")


def _target_name(target: Any) -> str:
    return str(getattr(target, "__name__", target))


def shrink(tree: Any, side: int) -> None:
    """Test-time resize to ``side`` (a plain tree or Detectron2's DictConfig, edited in place)."""
    model = tree["model"]
    backbone = model["backbone"]
    square = "square_pad" in backbone and backbone["square_pad"]
    for aug in tree["dataloader"]["test"]["mapper"]["augmentations"]:
        if _target_name(aug["_target_"]).endswith("ResizeShortestEdge"):
            aug["short_edge_length"] = side
            if square:
                aug["max_size"] = side
    if square:
        backbone["square_pad"] = side
        net = backbone.get("net")
        if net is not None and "img_size" in net:  # ViT: relative positions at this size
            net["img_size"] = side


def our_lazy_config(path: Path, side: int = SIDE) -> Config:
    """Our reading of ``path`` at test size ``side``; ConfigError where the exporter refuses."""
    from export_tools.lazy.translate import lazy_tree_to_config, read_lazy_tree  # noqa: PLC0415
    from export_tools.modeling.supported import check_supported  # noqa: PLC0415

    tree = read_lazy_tree(path)
    shrink(tree, side)
    # no checkpoint statistics needed: the reader reads a lambda norm's body (lazy/lambdas.py)
    cfg = lazy_tree_to_config(tree, {}, str(path))
    check_supported(cfg)
    return cfg


def export_ours(cfg: Config, out: Path) -> Path:
    """Synthetic weights to ``out/w.pkl``, our graph to ``out/m.onnx``."""
    from benchmarks.synthetic_checkpoint import CalibratedWeights  # noqa: PLC0415
    from export_tools.export import build_onnx_from_weights  # noqa: PLC0415
    from export_tools.onnx_io import save_model  # noqa: PLC0415 - external data over 2 GiB

    weights = CalibratedWeights.for_config(cfg)
    model = build_onnx_from_weights(cfg, weights, model_name=out.name)
    save_model(model, out / "m.onnx")
    with (out / "w.pkl").open("wb") as fh:
        pickle.dump({"model": weights.state_dict(), "__author__": "d2stream synthetic weights"},
                    fh)
    return out / "m.onnx"


def detectron2_reference(path: Path, weights: Path, side: int):
    """Detectron2's model from the same file and weights: ``BGR image -> Instances``."""
    import torch  # noqa: PLC0415
    from detectron2.checkpoint import DetectionCheckpointer  # noqa: PLC0415
    from detectron2.config import LazyConfig, instantiate  # noqa: PLC0415

    from daemon.evaluation.reference import output_to_instances  # noqa: PLC0415

    cfg = LazyConfig.load(str(path))
    shrink(cfg, side)
    model = instantiate(cfg.model).eval()
    DetectionCheckpointer(model).load(str(weights))
    mapper = cfg.dataloader.test.mapper
    augs = [instantiate(a) for a in mapper.augmentations]
    rgb = mapper.image_format == "RGB"

    def run(bgr):
        image = bgr[:, :, ::-1] if rgb else bgr
        for aug in augs:
            image = aug.get_transform(image).apply_image(image)
        tensor = torch.as_tensor(image.astype("float32").transpose(2, 0, 1))
        with torch.no_grad():
            output = model([{"image": tensor, "height": bgr.shape[0], "width": bgr.shape[1]}])
        return output_to_instances(output[0])

    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--side", type=int, default=SIDE)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from daemon.evaluation.parity import Tolerances, compare_many  # noqa: PLC0415
    from daemon.evaluation.reference import thresholds_from_cfg  # noqa: PLC0415
    from daemon.evaluation.runner import read_image  # noqa: PLC0415
    from daemon.inference.predictor import Predictor  # noqa: PLC0415
    from export_tools.errors import ConfigError  # noqa: PLC0415

    args.out.mkdir(parents=True, exist_ok=True)
    try:
        cfg = our_lazy_config(args.config, args.side)
    except ConfigError as exc:
        print(f"ConfigError: {exc}")
        return 2
    onnx_path = export_ours(cfg, args.out)
    reference = detectron2_reference(args.config, args.out / "w.pkl", args.side)
    ours = Predictor(onnx_path, num_threads=1)
    refs, preds = [], []
    for image in IMAGES:
        bgr = read_image(image)
        refs.append(reference(bgr))
        preds.append(ours.predict_compact(bgr).to_instances())
    report = compare_many([str(p) for p in IMAGES], refs, preds, Tolerances(),
                          thresholds_from_cfg(cfg), model=str(onnx_path),
                          reference=f"detectron2 LazyConfig {args.config}")
    print(report.format_table())
    (args.out / "report.json").write_text(report.dumps())
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
