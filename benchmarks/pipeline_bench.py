"""Pipeline benchmark: the daemon vs the bare model loop on the same frames.

One run prints:

- frames per second processed by ``d2stream run`` (capture thread, queue, shared memory, worker
  process, events, event log) and by a bare ``Predictor.predict_compact`` loop over the same
  decoded frames, and their ratio (target >= 0.95): daemon and bare runs alternate, and the
  ratio is the median over the rounds of each daemon run's fps over its round's bare run;
- capture-to-result latency p50/p95 (the daemon's own statistics);
- frames dropped or lost, and the peak RSS of the daemon, its worker and the bare loop.

By default the video is read losslessly (every frame inferred, as fast as the model goes);
``--fps N`` plays it like an N-fps camera instead (frames are dropped when the model is slower).

    python benchmarks/pipeline_bench.py                      # exports the demo fixture model
    python benchmarks/pipeline_bench.py --model models/demo.onnx --frames 200 --size 640x480
"""

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

import cv2
import numpy as np
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from daemon.demo.synthetic import write_demo_video  # noqa: E402
from daemon.inference.predictor import Predictor  # noqa: E402
from daemon.structures.metrics import peak_rss_kb  # noqa: E402

DEMO = "mask_rcnn_R_50_FPN_demo"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="exported .onnx (default: export the demo "
                        "fixture model into a temporary folder)")
    parser.add_argument("--fixtures", type=Path, default=REPO_ROOT.parent / "shared" / "fixtures")
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--size", default="320x240", help="video WIDTHxHEIGHT (320x240)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="ONNX Runtime threads for both runs (all cores)")
    parser.add_argument("--fps", type=float, default=0.0,
                        help="0: lossless (default); N: play the video like an N-fps camera")
    parser.add_argument("--repeat", type=int, default=3,
                        help="alternate daemon and bare runs this many times; medians are "
                             "reported (3), which evens out a busy machine")
    parser.add_argument("--depth", default="1,2", help="worker.pipeline_depth values to "
                        "compare, comma-separated (1,2)")
    parser.add_argument("--spin-wait", choices=["off", "on"], default="on",
                        help="the daemon's model.spin_wait (on, its default); the bare loop "
                             "always spins, its fastest setting")
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    parser.add_argument("--bare-loop", nargs=2, metavar=("MODEL", "VIDEO"),
                        help=argparse.SUPPRESS)  # internal: one bare run in a fresh process
    return parser.parse_args()


def export_demo(fixtures: Path, out: Path) -> Path:
    from export_tools.export import export_model  # desktop-side dependency

    folder = fixtures / DEMO
    return export_model(folder / "config.yaml", folder / "model_final.pth", out,
                        class_names=["square", "circle", "triangle"], model_name=DEMO)


def run_daemon(model: Path, video: Path, workdir: Path, threads: int, fps: float,
               depth: int = 1, spin_wait: bool = True) -> dict[str, Any]:
    """``d2stream run`` on the video; returns its final stats and the events."""
    source = {"type": "opencv", "url": str(video), "realtime": fps > 0}
    config = {
        "model": {"path": str(model), "num_threads": threads, "spin_wait": spin_wait,
                  "backend": "onnxruntime"},
        "cameras": [{"name": "bench", "source": source, "queue_size": 1}],
        # every frame to the model, like the bare loop (events_bench.py measures the gating)
        "detect": {"fps": 0}, "motion": {"enabled": False},
        "outputs": {"event_log": {"path": str(workdir / "events.jsonl"), "fsync": "never"}},
        "log_level": "warning", "worker": {"pipeline_depth": depth},
    }
    (workdir / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    stats_path = workdir / "stats.json"
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    subprocess.run([sys.executable, "-m", "daemon.cli.main", "run", "--config",
                    str(workdir / "config.yaml"), "--stats-json", str(stats_path)],
                   check=True, env=env, cwd=workdir)
    events = [json.loads(line) for line in (workdir / "events.jsonl").read_text().splitlines()]
    return {"stats": json.loads(stats_path.read_text()), "events": events}


def bare_loop(model: Path, video: Path, threads: int) -> dict[str, float]:
    """:func:`bare_loop_here` in a fresh process (so its peak RSS is its own)."""
    out = subprocess.run([sys.executable, __file__, "--threads", str(threads), "--bare-loop",
                          str(model), str(video)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def bare_loop_here(model: Path, video: Path, threads: int) -> dict[str, float]:
    """``predict_compact`` over the decoded frames, timed like the daemon (model loaded)."""
    cap = cv2.VideoCapture(str(video))
    frames = []
    while True:
        ok, image = cap.read()
        if not ok:
            break
        frames.append(image)
    cap.release()
    predictor = Predictor(model, num_threads=threads, backend="onnxruntime")
    start = time.perf_counter()
    for image in frames:
        predictor.predict_compact(image)
    elapsed = time.perf_counter() - start
    return {"frames": len(frames), "fps": len(frames) / elapsed,
            "peak_rss_mb": (peak_rss_kb() or 0) / 1024}


def report(daemons: list[dict[str, Any]], bares: list[dict[str, float]],
           args: argparse.Namespace) -> dict[str, Any]:
    """Medians over the repetitions; latency, drops and RSS over all daemon runs."""
    cams = [d["stats"]["cameras"]["bench"] for d in daemons]
    workers = [d["stats"]["worker"] for d in daemons]
    p50 = float(np.median([c["latency_p50_s"] * 1000 for c in cams]))
    p95 = float(np.median([c["latency_p95_s"] * 1000 for c in cams]))
    daemon_fps = float(np.median([c["mean_fps"] for c in cams]))
    bare_fps = float(np.median([b["fps"] for b in bares]))
    # each daemon run against the bare run of the same round: the machine's drift cancels out
    paired = float(np.median([c["mean_fps"] / b["fps"] for c, b in zip(cams, bares, strict=True)]))
    busy = [w["inference_total_s"] * c["mean_fps"] / c["processed"]
            for w, c in zip(workers, cams, strict=True) if c["processed"]]
    return {
        "frames": args.frames, "size": args.size, "threads": args.threads,
        "repeat": args.repeat,
        "mode": "lossless" if args.fps <= 0 else f"realtime {args.fps:g} fps",
        "daemon_spin_wait": args.spin_wait == "on",
        "daemon_fps": daemon_fps, "bare_fps": bare_fps, "ratio": paired,
        "ratio_of_medians": daemon_fps / bare_fps,
        "daemon_fps_runs": [c["mean_fps"] for c in cams],
        "bare_fps_runs": [b["fps"] for b in bares],
        "worker_busy": float(np.median(busy)) if busy else float("nan"),
        "capture_to_result_ms_p50": p50, "capture_to_result_ms_p95": p95,
        "processed": sum(c["processed"] for c in cams),
        "dropped": sum(c["dropped"] for c in cams),
        "lost": sum(w["frames_lost"] for w in workers),
        "peak_rss_mb": {
            "daemon": max(d["stats"]["peak_rss_kb"]["daemon"] for d in daemons) / 1024,
            "worker": max(d["stats"]["peak_rss_kb"]["worker"] for d in daemons) / 1024,
            "bare_loop": max(b["peak_rss_mb"] for b in bares)},
    }


def print_report(result: dict[str, Any]) -> None:
    rss = result["peak_rss_mb"]
    runs = ", ".join(f"{d:.2f}/{b:.2f}" for d, b in
                     zip(result["daemon_fps_runs"], result["bare_fps_runs"], strict=True))
    print(f"pipeline benchmark: {result['frames']} frames {result['size']}, "
          f"{result['threads']} threads, {result['mode']}, {result['repeat']} runs each, "
          f"worker.pipeline_depth {result['pipeline_depth']}, daemon model.spin_wait "
          f"{'on' if result['daemon_spin_wait'] else 'off'}")
    print(f"  daemon      {result['daemon_fps']:7.2f} frames/s (median)")
    print(f"  bare loop   {result['bare_fps']:7.2f} frames/s (median)")
    print(f"  ratio       {result['ratio']:7.3f}   (target >= 0.95; median of daemon/bare per "
          f"round: {runs}; ratio of the medians {result['ratio_of_medians']:.3f})")
    print(f"  worker busy {result['worker_busy']:7.1%}   (inference time / daemon wall time)")
    print(f"  capture->result latency p50 {result['capture_to_result_ms_p50']:.1f} ms, "
          f"p95 {result['capture_to_result_ms_p95']:.1f} ms (medians over the runs)")
    print(f"  processed {result['processed']}, dropped {result['dropped']}, "
          f"lost {result['lost']}")
    print(f"  peak RSS    daemon {rss['daemon']:.0f} MB, worker {rss['worker']:.0f} MB, "
          f"bare loop {rss['bare_loop']:.0f} MB")


def main() -> int:
    args = parse_args()
    if args.bare_loop:
        result = bare_loop_here(Path(args.bare_loop[0]), Path(args.bare_loop[1]), args.threads)
        print(json.dumps(result))
        return 0
    size = tuple(int(v) for v in args.size.lower().split("x"))
    with tempfile.TemporaryDirectory(prefix="d2s-bench-") as tmp:
        workdir = Path(tmp)
        model = args.model or export_demo(args.fixtures, workdir / "demo.onnx")
        video = workdir / "bench.avi"
        write_demo_video(video, args.frames, size, fps=args.fps or 10.0, seed=1)
        depths = [int(d) for d in str(args.depth).split(",") if d]
        daemons: dict[int, list[dict[str, Any]]] = {d: [] for d in depths}
        bares = []
        for i in range(args.repeat):  # interleaved: every variant sees the same machine
            for depth in depths:
                run_dir = workdir / f"run{i}-depth{depth}"
                run_dir.mkdir()
                daemons[depth].append(run_daemon(model.resolve(), video, run_dir, args.threads,
                                                 args.fps, depth, args.spin_wait == "on"))
            bares.append(bare_loop(model, video, args.threads))
        results = {d: report(daemons[d], bares, args) | {"pipeline_depth": d} for d in depths}
    for result in results.values():
        print_report(result)
    if args.json:
        out = results[depths[0]] | {"by_depth": {str(d): r for d, r in results.items()}}
        args.json.write_text(json.dumps(out, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
