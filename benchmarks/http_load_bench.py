"""Live-view load benchmark: detection fps with no viewer vs with a crowd of loopback clients.

Each run is ``d2stream run`` on the same lossless video (every frame inferred as fast as the
model goes); runs alternate between no client and a crowd (MJPEG readers, viewers that never
read, ``/healthz`` pollers), ``--repeat`` times each. The medians of the processed-frames rate
are compared (target: ratio >= 0.95). Everything stays on 127.0.0.1 and each run is bounded by
the video's length.

    python benchmarks/http_load_bench.py                       # 32 readers + 8 stalled + 4 pollers
    python benchmarks/http_load_bench.py --readers 64 --frames 200 --json http_load.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from benchmarks.soak_bench import export_demo  # noqa: E402
from daemon.demo.synthetic import write_demo_video  # noqa: E402
from tests.daemon.daemon_helpers import (  # noqa: E402
    DaemonProcess,
    daemon_config,
    free_port,
    write_yaml,
)
from tests.daemon.reliability.fault_helpers import health, wait_for  # noqa: E402
from tests.daemon.reliability.http_clients import Crowd  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="exported .onnx (default: the demo fixture)")
    parser.add_argument("--fixtures", type=Path, default=REPO_ROOT.parent / "shared" / "fixtures")
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--size", default="640x480")
    parser.add_argument("--readers", type=int, default=32)
    parser.add_argument("--stalled", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path)
    return parser.parse_args()


def one_run(work: Path, model: Path, video: Path, crowd_size: tuple[int, int] | None
            ) -> dict[str, Any]:
    port = free_port()
    readers, stalled = crowd_size or (0, 0)
    config = daemon_config(
        model, video,
        cameras=[{"name": "cam", "source": {"type": "opencv", "url": str(video),
                                            "realtime": False}}],
        outputs={"http": {"enabled": True, "port": port, "max_clients": readers + stalled + 1,
                          "max_connections": readers + stalled + 32, "max_fps": 30},
                 "event_log": {"fsync": "interval"}},
        worker={"start_timeout_s": 300},
        detect={"fps": 0}, motion={"enabled": False})  # every frame goes to the model
    daemon = DaemonProcess(write_yaml(work / "bench.yaml", config), work)
    wait_for(lambda: health(port), 300, "the live view", daemon.stderr)
    crowd = Crowd(port, readers, stalled, pollers=4 if crowd_size else 0)
    if crowd_size:
        crowd.start()
    try:
        code = daemon.wait(1800)
    finally:
        crowd.close()
        daemon.kill()
    if code != 0:
        raise SystemExit(f"d2stream run failed ({code}):\n{daemon.stderr()[-3000:]}")
    cam = daemon.stats()["cameras"]["cam"]
    return {"clients": crowd.size if crowd_size else 0, "fps": cam["mean_fps"],
            "processed": cam["processed"], "frames_streamed": sum(crowd.counts)}


def main() -> int:
    args = parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="d2stream-httpload-") as tmp:
        work = Path(tmp)
        model = args.model or export_demo(args.fixtures, work / "demo.onnx")
        video = work / "shapes.avi"
        write_demo_video(video, args.frames, (width, height), 10.0, seed=16)
        for _ in range(args.repeat):
            for crowd in (None, (args.readers, args.stalled)):
                runs.append(one_run(work, model, video, crowd))
                print(json.dumps(runs[-1]), flush=True)
    alone = statistics.median(r["fps"] for r in runs if not r["clients"])
    loaded = statistics.median(r["fps"] for r in runs if r["clients"])
    summary = {"frames": args.frames, "size": args.size, "clients": runs[-1]["clients"],
               "fps_no_client": round(alone, 3), "fps_with_clients": round(loaded, 3),
               "ratio": round(loaded / alone, 3) if alone else None,
               "frames_streamed_per_run": statistics.median(
                   r["frames_streamed"] for r in runs if r["clients"])}
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "runs": runs}, indent=1),
                             encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
