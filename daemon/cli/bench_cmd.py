"""``d2stream bench``: latency percentiles of the graph and of post-processing, and peak memory."""

from __future__ import annotations

import argparse
import logging
import resource
import sys
import time

import numpy as np
from tqdm import tqdm

from d2common.errors import D2StreamError
from daemon.demo.synthetic import synthetic_scene
from daemon.inference.backends import DEFAULT_BACKEND, LOCAL_BACKEND_CHOICES
from daemon.inference.predictor import Predictor, postprocess

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="exported .onnx model")
    parser.add_argument("--size", default="800x1067", metavar="HxW",
                        help="network input size (default 800x1067)")
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads")
    parser.add_argument("--runs", type=int, default=10, help="timed runs (default 10)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs first (default 2)")
    parser.add_argument("--image", help="an image to use instead of synthetic shapes")
    parser.add_argument("--backend", default=DEFAULT_BACKEND, choices=list(LOCAL_BACKEND_CHOICES),
                        help=f"inference engine (default {DEFAULT_BACKEND}: the fastest "
                             "installed one, measured once and cached)")
    parser.add_argument("--no-peak", action="store_true",
                        help="skip the CPU peak / matmul / FLOP-floor lines")


def parse_size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError as exc:
        raise D2StreamError(f"--size: expected HxW such as 800x1067, got {text!r}") from exc
    if h < 1 or w < 1:
        raise D2StreamError(f"--size: sizes must be positive, got {text!r}")
    return h, w


def percentiles(values: list[float]) -> str:
    arr = np.asarray(values) * 1000.0
    return (f"p50 {np.percentile(arr, 50):8.1f} ms  p90 {np.percentile(arr, 90):8.1f} ms  "
            f"mean {arr.mean():8.1f} ms")


def run(args: argparse.Namespace) -> int:
    try:
        h, w = parse_size(args.size)
        predictor = Predictor(args.model, num_threads=args.threads, min_size=min(h, w),
                              max_size=max(h, w), backend=args.backend)
    except D2StreamError as exc:
        log.error("%s", exc)
        return 2
    if args.image:
        from d2common.image_io import read_image_bgr

        image = read_image_bgr(args.image)
    else:
        image = synthetic_scene(h, w)
    net_input = predictor.preprocess(image)
    times: dict[str, list[float]] = {"graph": [], "postprocess": [], "mask paste": [],
                                     "panoptic": []}
    counts = []
    meta = predictor.metadata
    for i in tqdm(range(args.warmup + args.runs), desc="bench", file=sys.stderr):
        t0 = time.perf_counter()
        raw = predictor.run_network(net_input)
        t1 = time.perf_counter()
        compact = postprocess(raw, tuple(net_input.shape[2:]), image.shape[:2], meta)
        t2 = time.perf_counter()
        inst = compact.to_instances()
        t3 = time.perf_counter()
        if meta.has_panoptic:
            compact.to_panoptic(inst)
        t4 = time.perf_counter()
        if i >= args.warmup:
            for key, dt in zip(times, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                times[key].append(dt)
            counts.append(len(inst))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    out = sys.stdout
    out.write(f"model       {args.model} ({meta.meta_architecture}"
              f"{', int8' if meta.quantization else ''})\n")
    out.write(f"input       {net_input.shape[2]}x{net_input.shape[3]}  threads "
              f"{args.threads or 'default'}  runs {args.runs}  backend "
              f"{predictor.backend.name}{' (auto)' if args.backend == 'auto' else ''}\n")
    shown = {"graph": True, "postprocess": True, "mask paste": meta.has_masks,
             "panoptic": meta.has_panoptic}
    for key, values in times.items():
        if shown[key]:
            out.write(f"{key:<11} {percentiles(values)}\n")
    out.write(f"total       {percentiles([sum(v) for v in zip(*times.values())])}\n")
    out.write(f"detections  {np.mean(counts):.1f} per image\n")
    out.write(f"peak RSS    {peak_mb:.0f} MB\n")
    if not args.no_peak:
        write_efficiency(out, args.model, net_input, float(np.median(times["graph"])))
    return 0


def write_efficiency(out, model: str, net_input: np.ndarray, graph_s: float) -> None:
    """CPU peak, a matmul measured now, the model's FLOPs and the floor they set."""
    from daemon.perf.cpu import machine_cpu_peak, matmul_gflops
    from daemon.perf.flops import count_flops

    peak = machine_cpu_peak()
    out.write(f"cpu peak    {peak.describe()}\n")
    out.write(f"matmul      {matmul_gflops():.1f} GFLOP/s (numpy 2048x2048, measured now)\n")
    report = count_flops(model, {"image": net_input})
    gflop = report.total / 1e9
    floor = gflop / peak.peak_gflops
    out.write(f"flops       {gflop:.1f} GFLOP -> floor {floor * 1e3:.0f} ms at peak; "
              f"efficiency (floor / graph p50) {floor / graph_s:.2f}; "
              f"{gflop / graph_s:.1f} GFLOP/s achieved\n")
