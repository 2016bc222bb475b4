"""d2stream vs Detectron2 eager PyTorch: end-to-end speed-ups, measured in one run.

    PYTHONPATH=. python -m benchmarks.detectron2_bench [--rounds 5] [--threads 2] [--json out.json]

Needs torch and detectron2 installed beside d2stream's device packages (onnxruntime, openvino,
numpy, opencv...) and the ``onnx`` package for the export; without torch or detectron2 it prints
one line saying so and exits 0. Nothing else in the project imports torch.

For each of Faster R-CNN R50-FPN and Mask R-CNN R50-FPN (the model zoo's 3x configs at full
width): synthetic weights (``export_tools.perf.random_weights``: a classifier biased so that the
RoI heads, NMS and mask head do a busy scene's work) are exported to ONNX by d2stream and loaded
into Detectron2's own model, so both run the same weights. Detectron2 runs as
``DefaultPredictor`` does (eager, ``torch.no_grad``, CPU, ``torch.set_num_threads``); d2stream
runs ``Predictor.predict_compact(frame).to_instances()`` (masks pasted). The frame is a 480x640
camera frame, which both resize to 800x1067. Variants: ONNX Runtime fp32, OpenVINO fp32, ONNX
Runtime int8, OpenVINO int8 (``d2stream export --int8``'s quantiser, calibrated on the
fixtures' scenes), all run interleaved with Detectron2 (one run of each per round, after a
warm-up round), reported as Detectron2's median over each variant's median. Before timing, the
fp32 outputs are compared with Detectron2's. ``auto``'s choice for each model is shown too, and
``--accuracy`` adds int8's box / mask AP change on the fixtures' ``shapes_val`` scenes.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.bench_lib import (
    CACHE,
    ZOO,
    _source_stamp,
    calibration_folder,
    camera_frame,
    end_to_end_run,
    int8_model,
    interleaved,
    load_average,
    log,
    machine_description,
)

MODELS = ("faster_rcnn_R_50_FPN_3x", "mask_rcnn_R_50_FPN_3x")
FRAME = (480, 640)  # resized to 800x1067 by ResizeShortestEdge(800, 1333)
D2 = "detectron2"
VARIANTS = (("ORT fp32", "onnxruntime", "fp32"), ("OpenVINO fp32", "openvino", "fp32"),
            ("ORT int8", "onnxruntime", "int8"), ("OpenVINO int8", "openvino", "int8"))
INT8_TARGET = 3.0  # issue 20: int8 >= 3x Detectron2 eager


def detectron2_missing() -> str | None:
    """Why Detectron2 cannot be measured here, or None."""
    import importlib.util

    missing = [m for m in ("torch", "detectron2") if importlib.util.find_spec(m) is None]
    return f"{' and '.join(missing)} not installed" if missing else None


def synthetic_model(short: str) -> tuple[Any, Path, dict[str, np.ndarray]]:
    """(our config, the fp32 ONNX file, the weights by Detectron2 name) of a zoo architecture."""
    from export_tools.export import build_onnx_from_weights
    from export_tools.onnx_io import save_model
    from export_tools.perf.random_weights import SyntheticWeights, zoo_config

    cfg = zoo_config(ZOO[short])
    weights = SyntheticWeights.for_config(cfg)
    model = build_onnx_from_weights(cfg, weights, model_name=short)
    path = CACHE / f"{short}-d2bench-{_source_stamp()}.onnx"
    if not path.is_file():
        CACHE.mkdir(parents=True, exist_ok=True)
        save_model(model, path)
    return cfg, path, weights.state_dict()


def detectron2_predictor(short: str, state: dict[str, np.ndarray]) -> Any:
    """Detectron2's ``DefaultPredictor`` for the zoo config with ``state`` loaded."""
    import torch
    from detectron2.config import get_cfg
    from detectron2.engine import DefaultPredictor

    from export_tools.zoo.catalog import get_entry

    with tempfile.TemporaryDirectory() as tmp:
        path = get_entry(ZOO[short]).write_config(Path(tmp) / "config.yaml")
        d2cfg = get_cfg()
        d2cfg.merge_from_file(str(path))
    d2cfg.MODEL.DEVICE = "cpu"
    d2cfg.MODEL.WEIGHTS = ""
    predictor = DefaultPredictor(d2cfg)
    own = predictor.model.state_dict()
    # The exporter asks for optional conv biases (zeros here) that Detectron2's normed convs lack.
    extra = [k for k in state if k not in own]
    nonzero = [k for k in extra if np.any(state[k])]
    tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()
               if k in own}
    missing, unexpected = predictor.model.load_state_dict(tensors, strict=False)
    missing = [k for k in missing if k not in ("pixel_mean", "pixel_std")]
    unexpected = [*unexpected, *nonzero]
    if missing or unexpected:
        raise SystemExit(f"{short}: weights do not fit Detectron2's model: missing {missing[:5]}"
                         f", unexpected {unexpected[:5]}")
    return predictor


def compare_outputs(ours: Any, theirs: Any) -> dict[str, Any]:
    """Detections, and the largest score / box difference of the sorted scores / matched boxes."""
    inst = theirs["instances"].to("cpu")
    d2_scores = inst.scores.numpy()
    d2_boxes = inst.pred_boxes.tensor.numpy()
    n = min(len(ours), len(d2_scores))
    score_diff = float(np.abs(np.sort(ours.scores)[::-1][:n] - np.sort(d2_scores)[::-1][:n])
                       .max()) if n else 0.0
    box_diff = 0.0
    for box, cls in zip(d2_boxes, inst.pred_classes.numpy()):
        same = ours.pred_boxes[ours.pred_classes == cls]
        if len(same):
            box_diff = max(box_diff, float(np.abs(same - box).max(axis=1).min()))
    return {"detections": len(ours), "detectron2_detections": int(len(d2_scores)),
            "max_score_diff": score_diff, "max_box_diff_px": box_diff}


def auto_choice(path: Path, threads: int) -> dict[str, Any]:
    """What ``backend: auto`` picks for ``path`` here, with its figures (a fresh measurement)."""
    from daemon.inference.predictor import Predictor

    with tempfile.TemporaryDirectory() as tmp:
        pred = Predictor(path, num_threads=threads, optimized_cache=tmp)
        files = list(Path(tmp).glob("*-backend-*.json"))
        seconds = json.loads(files[0].read_text())["seconds"] if files else {}
    return {"backend": pred.backend.name, "ms": {k: round(v * 1e3, 1) for k, v in
                                                  seconds.items()}}


def bench_model(short: str, args: argparse.Namespace) -> dict[str, Any]:
    from daemon.inference.backends import available_backends
    from daemon.inference.predictor import Predictor

    _, fp32, state = synthetic_model(short)
    files = {"fp32": fp32, "int8": int8_model(fp32, calibration_folder(), min_size=480,
                                              images=args.calibration_images)}
    d2 = detectron2_predictor(short, state)
    frame = camera_frame(*FRAME)
    preds = {label: Predictor(files[precision], num_threads=args.threads, backend=backend)
             for label, backend, precision in VARIANTS if backend in available_backends()}
    net = preds["ORT fp32"].preprocess(frame).shape[2:]
    parity = compare_outputs(preds["ORT fp32"](frame), d2(frame))
    print(f"\n== {short}: frame {FRAME[0]}x{FRAME[1]} -> {net[0]}x{net[1]}, threads "
          f"{args.threads}, {args.rounds} interleaved rounds (+1 warm-up)")
    print(f"fp32 vs Detectron2: {parity['detections']} vs {parity['detectron2_detections']} "
          f"detections, max score diff {parity['max_score_diff']:.2g}, max box diff "
          f"{parity['max_box_diff_px']:.2g} px")
    variants = {D2: lambda: d2(frame), **{k: end_to_end_run(p, frame) for k, p in preds.items()}}
    t = interleaved(variants, args.rounds)
    rows = {}
    for label in variants:
        ratio = t[D2].p50 / t[label].p50
        rows[label] = {"p50_ms": t[label].p50 * 1e3, "best_ms": t[label].best * 1e3,
                       "vs_detectron2": ratio}
        print(f"{label:<14} {t[label].ms()}  {ratio:5.2f}x Detectron2")
    print(f"load average {load_average()}")
    choice = {p: auto_choice(files[p], args.threads) for p in ("fp32", "int8")}
    for precision, c in choice.items():
        print(f"auto picks {c['backend']} for {precision} ({c['ms']})")
    return {"input": list(net), "parity_fp32": parity, "end_to_end": rows, "auto": choice}


def print_table(results: dict[str, Any]) -> None:
    labels = [D2, *(v[0] for v in VARIANTS)]
    print("\n| Model | " + " | ".join(labels) + " |")
    print("|---|" + "---|" * len(labels))
    for short, r in results.items():
        cells = []
        for label in labels:
            row = r["end_to_end"].get(label)
            cells.append("n/a" if row is None else f"{row['p50_ms']:.0f} ms"
                         + ("" if label == D2 else f" (**{row['vs_detectron2']:.2f}x**)"))
        print(f"| {short} | " + " | ".join(cells) + " |")
    for short, r in results.items():
        best = max((v for k, v in r["end_to_end"].items() if "int8" in k),
                   key=lambda v: v["vs_detectron2"], default=None)
        if best:
            ratio = best["vs_detectron2"]
            verdict = "meets" if ratio >= INT8_TARGET else "does NOT meet"
            print(f"{short}: best int8 is {ratio:.2f}x Detectron2 eager; "
                  f"{verdict} the {INT8_TARGET:g}x target")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS),
                        help=f"comma-separated, from {', '.join(MODELS)}")
    parser.add_argument("--threads", type=int, default=2, help="threads for every engine")
    parser.add_argument("--rounds", type=int, default=5, help="timed interleaved rounds")
    parser.add_argument("--calibration-images", type=int, default=8,
                        help="int8 calibration images (speed does not depend on them)")
    parser.add_argument("--accuracy", action="store_true",
                        help="also int8's AP change on the fixtures' shapes_val scenes")
    parser.add_argument("--json", type=Path, help="write the results here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    log.setLevel(logging.INFO)
    reason = detectron2_missing()
    if reason:
        print(f"detectron2_bench skipped: {reason} (pip install torch torchvision, then "
              "detectron2 from source, in the same environment as d2stream)")
        return 0
    import torch

    torch.set_num_threads(args.threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import detectron2

    machine = {**machine_description(), "torch": torch.__version__,
               "detectron2": detectron2.__version__}
    print("machine: " + json.dumps(machine))
    results = {short: bench_model(short, args) for short in args.models.split(",")}
    print_table(results)
    out: dict[str, Any] = {"machine": machine, "rounds": args.rounds, "threads": args.threads,
                           "models": results}
    if args.accuracy:
        from benchmarks.sections_extra import int8_accuracy

        print("\n== int8 accuracy (fixture models on shapes_val, ONNX Runtime)")
        out["int8_accuracy"] = int8_accuracy(calibration_folder())
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
