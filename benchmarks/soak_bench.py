"""Soak benchmark: the CI soak scenario for as long as you like, memory and descriptors sampled.

The scenario (``tests/daemon/reliability/soak.py``): a looping real-time video camera and a
network camera unplugged every 10 s, event log rotation, snapshots pruned, MQTT through the
outbox to a real mosquitto, live-view viewers coming and going. Prints the samples' summary
(growth after the warm-up, least-squares slope per hour) and writes every sample as JSON.

    python benchmarks/soak_bench.py --minutes 30 --json soak.json
    python benchmarks/soak_bench.py --model models/demo.onnx --minutes 240

Needs mosquitto (``bash .ci/system-deps.sh``) and the fixtures (or ``--model``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from daemon.demo.synthetic import write_demo_video  # noqa: E402
from tests.daemon.reliability.soak import Sample, run_soak  # noqa: E402

DEMO = "mask_rcnn_R_50_FPN_demo"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="measured time (30)")
    parser.add_argument("--warmup", type=float, default=60.0, help="warm-up seconds (60)")
    parser.add_argument("--every", type=float, default=5.0, help="seconds between samples")
    parser.add_argument("--model", type=Path, help="exported .onnx (default: export the demo "
                        "fixture model)")
    parser.add_argument("--fixtures", type=Path, default=REPO_ROOT.parent / "shared" / "fixtures")
    parser.add_argument("--json", type=Path, help="write the samples and summary as JSON")
    return parser.parse_args()


def export_demo(fixtures: Path, out: Path) -> Path:
    from export_tools.export import export_model  # noqa: PLC0415

    folder = fixtures / DEMO
    meta = json.loads((folder / "manifest.json").read_text())
    return export_model(folder / "config.yaml", folder / "model_final.pth", out,
                        class_names=meta["thing_classes"], model_name=DEMO)


def slope_per_hour(samples: list[Sample], name: str) -> float:
    """Least-squares slope of ``name`` against time, per hour."""
    xs = [s.t for s in samples]
    ys = [float(getattr(s, name)) for s in samples]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mean_x) ** 2 for x in xs)
    cov = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys))
    return cov / var * 3600.0 if var else 0.0


def main() -> int:
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="d2stream-soak-") as tmp:
        work = Path(tmp)
        model = args.model or export_demo(args.fixtures, work / "demo.onnx")
        video = work / "shapes.avi"
        write_demo_video(video, 60, (320, 240), 10.0, seed=14)
        result = run_soak(work, model, video, args.minutes * 60.0, args.warmup, args.every)
    measured = result.measured()
    summary = result.summary()
    for name in ("daemon_rss_kb", "worker_rss_kb", "daemon_fds", "worker_fds",
                 "daemon_threads"):
        summary[f"{name}_slope_per_hour"] = round(slope_per_hour(measured, name), 1)
    summary["worker_restarts"] = result.stats["worker"]["restarts"]
    summary["camera_outages"] = result.stats["faults"]["cameras"]["door"]["outages"]
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps({"summary": summary,
                                         "samples": [asdict(s) for s in result.samples]},
                                        indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
