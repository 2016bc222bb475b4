"""Benchmark sections beyond fp32 latency: backends, int8, Pi-style, cold start, daemon."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.bench_lib import (
    CACHE,
    FIXTURES,
    ORT,
    REPO,
    SIZES,
    calibration_folder,
    camera_frame,
    end_to_end_run,
    graph_run,
    int8_model,
    interleaved,
    load_average,
    log,
    model_sizes,
    random_model,
    size_hw,
)

FAST = "faster_rcnn_R_50_FPN_3x"
ACCURACY_FIXTURES = ("mask_rcnn_R_50_FPN_demo", "faster_rcnn_X_FPN_gn_rgb")
PI_MIN_SIZE = 320
PI_FRAME = (480, 640)
# The Pi profile also keeps fewer RPN proposals: at 320 px RoIAlign and the box head over 1000
# proposals cost more than the whole backbone (a config setting users choose at export).
PI_PROPOSALS = 100
PI_OPTS = ("MODEL.RPN.POST_NMS_TOPK_TEST", str(PI_PROPOSALS))
# the Pi profile's model for the daemon: MIN_SIZE_TEST baked into its metadata
PI_MODEL_OPTS = (*PI_OPTS, "INPUT.MIN_SIZE_TEST", str(PI_MIN_SIZE))


def backends(args: argparse.Namespace, out: dict[str, Any]) -> None:
    """ONNX Runtime vs OpenVINO, interleaved, on the fp32 graphs."""
    from daemon.inference.backends import available_backends
    from daemon.inference.predictor import Predictor

    names = available_backends()
    print(f"\n== backends ({', '.join(names)}), graph latency")
    rows = []
    for short, path, size, (h, w) in model_sizes(args.models, args.sizes):
        preds = {b: Predictor(path, num_threads=args.threads, min_size=h, max_size=w,
                              backend=b) for b in names}
        x = next(iter(preds.values())).preprocess(camera_frame(*SIZES[size]))
        t = interleaved({b: graph_run(p, x) for b, p in preds.items()}, args.runs)
        rows.append({"model": short, "size": size, **{b: t[b].p50 for b in names}})
        print(f"{short:<26} {size:>8}: " + " | ".join(f"{b} {t[b].ms()}" for b in names)
              + f" | load {load_average()}")
    out["backends"] = rows


def int8(args: argparse.Namespace, out: dict[str, Any]) -> None:
    """int8 vs fp32 latency on the full-width model, accuracy change on the fixture models."""
    from daemon.inference.predictor import Predictor

    calib = calibration_folder()
    fp32 = random_model(FAST)
    q = int8_model(fp32, calib, min_size=480)
    print(f"\n== int8 vs fp32 ({FAST}, graph latency)")
    rows = []
    for size in args.sizes:
        h, w = size_hw(size)
        p32 = Predictor(fp32, num_threads=args.threads, min_size=h, max_size=w, backend=ORT)
        p8 = Predictor(q, num_threads=args.threads, min_size=h, max_size=w, backend=ORT)
        x = p32.preprocess(camera_frame(*SIZES[size]))
        t = interleaved({"fp32": graph_run(p32, x), "int8": graph_run(p8, x)}, args.runs)
        speedup = t["fp32"].p50 / t["int8"].p50
        rows.append({"size": size, "fp32_p50_s": t["fp32"].p50, "int8_p50_s": t["int8"].p50,
                     "speedup": speedup})
        print(f"{size:>8}: fp32 {t['fp32'].ms()} | int8 {t['int8'].ms()} | int8 speed-up "
              f"{speedup:.2f}x | load {load_average()}")
    out["int8"] = {"latency": rows, "accuracy": int8_accuracy(calib)}


def int8_accuracy(calib: Path) -> list[dict[str, Any]]:
    """COCO AP on shapes_val of trained fixture models: fp32, int8, and int8 with the Pi
    profile's proposal count (all exported from the same checkpoint)."""
    from daemon.evaluation.runner import evaluate_predictions
    from daemon.inference.predictor import Predictor

    val = FIXTURES / "shapes_val"
    rows = []
    for name in ACCURACY_FIXTURES:
        variants = {"fp32": _fixture_export(name)}
        variants["int8"] = int8_model(variants["fp32"], calib, min_size=None, images=64)
        few = _fixture_export(name, PI_OPTS)
        variants[f"int8, {PI_PROPOSALS} proposals"] = int8_model(few, calib, min_size=None,
                                                                 images=64)
        ap = {}
        for label, path in variants.items():
            rep = evaluate_predictions(Predictor(path, backend=ORT), val / "annotations.json",
                                       val / "images", progress=False)
            ap[label] = {task: m["AP"] for task, m in rep.metrics.items()}
        delta = {label: {t: ap[label][t] - ap["fp32"][t] for t in ap["fp32"]} for label in ap}
        rows.append({"model": name, "ap": ap, "change": delta})
        print(f"{name:<26} AP " + " | ".join(f"{label} {json.dumps(_round(v))}"
                                             for label, v in ap.items()))
        print(f"{'':<26} change vs fp32: " + " | ".join(
            f"{label} {json.dumps(_round(v))}" for label, v in delta.items() if label != "fp32"))
    return rows


def _round(d: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 2) for k, v in d.items()}


def _fixture_export(name: str, opts: tuple[str, ...] = ()) -> Path:
    """The fixture model exported to fp32 ONNX with config ``opts`` (cached)."""
    from export_tools.export import export_model

    folder = FIXTURES / name
    suffix = "-".join(opts[1::2])
    path = CACHE / "fixtures" / f"{name}{'-' + suffix if suffix else ''}.onnx"
    if not path.is_file():
        export_model(folder / "config.yaml", folder / "model_final.pth", path, opts=list(opts))
    return path


def pi_model() -> Path:
    """The Pi profile: int8, MIN_SIZE_TEST 320 and fewer proposals, all in the model file."""
    return int8_model(random_model(FAST, PI_MODEL_OPTS), calibration_folder(), PI_MIN_SIZE)


def pi_setting(args: argparse.Namespace, out: dict[str, Any]) -> None:
    """MIN_SIZE_TEST 320 on a 480x640 camera frame: end-to-end fps of fp32, int8, and int8 with
    the Pi profile's proposal count."""
    from daemon.inference.predictor import Predictor

    fp32 = random_model(FAST)
    models = {"fp32": fp32, "int8": int8_model(fp32, calibration_folder(), PI_MIN_SIZE),
              f"int8, {PI_PROPOSALS} proposals": pi_model()}
    image = camera_frame(*PI_FRAME)
    preds = {k: Predictor(m, num_threads=args.threads, min_size=PI_MIN_SIZE, backend=ORT)
             for k, m in models.items()}
    net = preds["int8"].preprocess(image).shape[2:]
    t = interleaved({k: end_to_end_run(p, image) for k, p in preds.items()},
                    max(args.runs, 10))
    fps = {k: 1.0 / v.p50 for k, v in t.items()}
    print(f"\n== Pi-style setting ({FAST}, MIN_SIZE_TEST {PI_MIN_SIZE}, frame "
          f"{PI_FRAME[0]}x{PI_FRAME[1]} -> {net[0]}x{net[1]}, threads {args.threads or 'all'})")
    for k in preds:
        print(f"{k:<22} end-to-end {t[k].ms()} = {fps[k]:.2f} fps (best "
              f"{1.0 / t[k].best:.2f}) | load {load_average()}")
    out["pi"] = {"input": list(net), "fps": fps, "p50_s": {k: v.p50 for k, v in t.items()},
                 "best_s": {k: v.best for k, v in t.items()}}


CHILD = r"""
import json, sys, time
t_start = float(sys.argv[4])
t0 = time.time()
from d2common.image_io import read_image_bgr
from daemon.inference.predictor import Predictor
t1 = time.time()
pred = Predictor(sys.argv[1], optimized_cache=sys.argv[3] or None, backend="onnxruntime")
t2 = time.time()
inst = pred(read_image_bgr(sys.argv[2]))
t3 = time.time()
status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
mb = lambda key: int(status[key].split()[0]) / 1024  # kB; VmHWM: peak since exec
print(json.dumps({"interpreter": t0 - t_start, "imports": t1 - t0, "model_load": t2 - t1,
                  "first_detection": t3 - t2, "total": t3 - t_start, "detections": len(inst),
                  "rss_mb": mb("VmRSS"), "peak_rss_mb": mb("VmHWM")}))
"""


def cold_start(args: argparse.Namespace, out: dict[str, Any]) -> None:
    """Process start to first detection (a fresh Python process), and its memory."""
    frames = {"pi": CACHE / "coldstart_480x640.png", "full": CACHE / "coldstart_1080x1440.png"}
    _write_frame(frames["pi"], PI_FRAME)
    _write_frame(frames["full"], (1080, 1440))
    cache_dir = CACHE / "ort-optimized"
    pi, full = pi_model(), random_model(FAST)
    variants = (("Pi profile (int8, 320)", pi, frames["pi"], ""),
                ("Pi profile, cached graph", pi, frames["pi"], str(cache_dir)),
                ("fp32 full width, 800", full, frames["full"], ""),
                ("fp32 800, cached graph", full, frames["full"], str(cache_dir)))
    print("\n== cold start: process start -> first detection")
    rows = []
    for label, model, image, cache in variants:
        if cache:
            _spawn(model, image, cache)  # the first start writes the cache
        r = _spawn(model, image, cache)
        r["variant"] = label
        rows.append(r)
        print(f"{label:<26} total {r['total']:.2f} s = interpreter {r['interpreter']:.2f} + "
              f"imports {r['imports']:.2f} + model load {r['model_load']:.2f} + first detection "
              f"{r['first_detection']:.2f} | without model load {r['total'] - r['model_load']:.2f}"
              f" s | RSS {r['rss_mb']:.0f} MB (peak {r['peak_rss_mb']:.0f} MB) | load "
              f"{load_average()}")
    out["coldstart"] = rows


def _spawn(model: Path, image: Path, cache: str) -> dict[str, Any]:
    t = time.time()
    proc = subprocess.run([sys.executable, "-c", CHILD, str(model), str(image), cache, repr(t)],
                          cwd=REPO, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _write_frame(path: Path, hw: tuple[int, int]) -> None:
    import cv2

    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), camera_frame(*hw))


def daemon_throughput(args: argparse.Namespace, out: dict[str, Any]) -> None:
    """Daemon fps vs the bare model loop on the Pi profile's model, with the daemon's own
    pipeline benchmark (``benchmarks/pipeline_bench.py``: same frames, same threads)."""
    script = REPO / "benchmarks" / "pipeline_bench.py"
    if not script.is_file():
        msg = f"{script.name} (the daemon's pipeline benchmark) is not in this tree; skipped"
        log.warning(msg)
        print(f"\n== daemon throughput: {msg}")
        out["daemon"] = {"skipped": msg}
        return
    threads = args.threads or os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="d2stream-daemon-bench-") as tmp:
        result = Path(tmp) / "pipeline.json"
        subprocess.run([sys.executable, str(script), "--model", str(pi_model()), "--size",
                        f"{PI_FRAME[1]}x{PI_FRAME[0]}", "--frames", "120", "--repeat", "5",
                        "--threads", str(threads), "--json", str(result)], cwd=REPO, check=True)
        out["daemon"] = json.loads(result.read_text())
