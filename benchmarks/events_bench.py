"""Motion-gating benchmark: CPU seconds per minute of video, a still scene vs a busy one.

Each scene is a video written here (320x240 by default): *still* is an empty scene with sensor
noise, *busy* has three shapes moving all the time. ``d2stream run`` reads each one losslessly
(its time rules run on the video's own clock, so the model runs as often as it would on a live
camera) with

- *gated*: the default ``detect``/``motion`` settings (``detect.fps: 5``, motion gating on);
- *every frame*: ``detect.fps: 0`` and motion gating off (the model sees every frame);

and the CPU time of the daemon and its worker process (user + system, from ``wait4``) is
reported per minute of video, after subtracting a start-up run on a one-frame video (Python
imports, model loading).

    python benchmarks/events_bench.py                      # exports the demo fixture model
    python benchmarks/events_bench.py --model models/demo.onnx --seconds 60 --threads 4
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
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from daemon.demo.synthetic import ShapeScene, write_demo_video  # noqa: E402

DEMO = "mask_rcnn_R_50_FPN_demo"
MODES = {
    "gated": {},
    "every frame": {"detect": {"fps": 0}, "motion": {"enabled": False}},
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="exported .onnx (default: export the demo "
                        "fixture model into a temporary folder)")
    parser.add_argument("--fixtures", type=Path, default=REPO_ROOT.parent / "shared" / "fixtures")
    parser.add_argument("--seconds", type=float, default=30.0, help="video length (30)")
    parser.add_argument("--fps", type=float, default=10.0, help="video frame rate (10)")
    parser.add_argument("--size", default="320x240", help="video WIDTHxHEIGHT (320x240)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="ONNX Runtime threads (all cores)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    return parser.parse_args()


def export_demo(fixtures: Path, out: Path) -> Path:
    from export_tools.export import export_model  # desktop-side dependency

    folder = fixtures / DEMO
    return export_model(folder / "config.yaml", folder / "model_final.pth", out,
                        class_names=["square", "circle", "triangle"], model_name=DEMO)


def write_still_video(path: Path, frames: int, size: tuple[int, int], fps: float) -> None:
    """An empty scene: background and sensor noise only."""
    scene = ShapeScene(size[0], size[1], n_shapes=0, seed=1)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    try:
        for _ in range(frames):
            writer.write(scene.render()[0])
    finally:
        writer.release()


def run_daemon(model: Path, video: Path, workdir: Path, threads: int,
               extra: dict[str, Any]) -> dict[str, Any]:
    """``d2stream run`` on ``video``; its final stats and the CPU seconds it used (with its
    worker: the worker is the daemon's child, waited for, so ``wait4`` counts it)."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = {
        "model": {"path": str(model), "num_threads": threads},
        "cameras": [{"name": "bench", "source": {"type": "opencv", "url": str(video),
                                                  "realtime": False}}],
        "outputs": {"event_log": {"path": str(workdir / "events.jsonl"), "fsync": "never"}},
        "log_level": "warning", **extra,
    }
    (workdir / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    stats_path = workdir / "stats.json"
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "daemon.cli.main", "run", "--config",
                             str(workdir / "config.yaml"), "--stats-json", str(stats_path)],
                            env=env, cwd=workdir)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"d2stream run failed (exit {proc.returncode}) on {video}")
    stats = json.loads(stats_path.read_text())["cameras"]["bench"]
    return {"cpu_s": usage.ru_utime + usage.ru_stime, "wall_s": time.perf_counter() - start,
            "inferences": stats["processed"], "skipped": stats["skipped"],
            "motion_frames": stats["motion_frames"], "events": stats["events"]}


def measure(model: Path, workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    size = tuple(int(v) for v in args.size.lower().split("x"))
    frames = max(1, round(args.seconds * args.fps))
    videos = {"still": workdir / "still.avi", "busy": workdir / "busy.avi",
              "one frame": workdir / "one.avi"}
    write_still_video(videos["still"], frames, size, args.fps)
    write_still_video(videos["one frame"], 1, size, args.fps)
    write_demo_video(videos["busy"], frames, size, args.fps, seed=1)
    minutes = frames / args.fps / 60.0
    results: dict[str, Any] = {"video_minutes": minutes, "frames": frames, "size": args.size,
                               "fps": args.fps, "threads": args.threads, "runs": {}}
    for mode, extra in MODES.items():
        base = run_daemon(model, videos["one frame"], workdir / f"{mode}-start", args.threads,
                          extra)
        for scene in ("still", "busy"):
            run = run_daemon(model, videos[scene], workdir / f"{mode}-{scene}", args.threads,
                             extra)
            run["startup_cpu_s"] = base["cpu_s"]
            run["cpu_s_per_video_minute"] = max(0.0, run["cpu_s"] - base["cpu_s"]) / minutes
            results["runs"][f"{scene}, {mode}"] = run
    return results


def print_report(results: dict[str, Any]) -> None:
    print(f"motion gating benchmark: {results['frames']} frames ({results['video_minutes']:.2f} "
          f"min of video at {results['fps']:g} fps), {results['size']}, "
          f"{results['threads']} threads")
    print(f"  {'scene, mode':<22} {'inferences':>10} {'skipped':>8} {'CPU s':>7} "
          f"{'CPU s per video minute':>23}")
    for name, run in results["runs"].items():
        print(f"  {name:<22} {run['inferences']:>10d} {run['skipped']:>8d} {run['cpu_s']:>7.1f} "
              f"{run['cpu_s_per_video_minute']:>23.1f}")
    start = next(iter(results["runs"].values()))["startup_cpu_s"]
    print(f"  (start-up, subtracted: {start:.1f} CPU s per run)")
    runs = results["runs"]
    still, busy = runs["still, gated"], runs["busy, gated"]
    if still["cpu_s_per_video_minute"] > 0:
        ratio = busy["cpu_s_per_video_minute"] / still["cpu_s_per_video_minute"]
        print(f"  gated: a still scene costs {ratio:.0f}x less CPU than a busy one")


def main() -> int:
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="d2s-events-bench-") as tmp:
        workdir = Path(tmp)
        model = (args.model or export_demo(args.fixtures, workdir / "demo.onnx")).resolve()
        results = measure(model, workdir, args)
    print_report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
