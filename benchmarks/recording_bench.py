"""Recording benchmark: CPU seconds per minute of 1080p H.264 footage recorded by remuxing (the
stream copied into segments, the daemon's path for an H.264 camera) vs by encoding (raw frames
encoded once with libx264 ultrafast/zerolatency, the path for a raw source), and the bytes
per hour each writes. Both run in one invocation on the same clip; the CPU time is that of the
recording ffmpeg process alone (``wait4``), not of the decoder feeding the encoder.

    python benchmarks/recording_bench.py                 # 30 s of 1920x1080 at 15 fps
    python benchmarks/recording_bench.py --seconds 60 --fps 15
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from daemon.recordings import ffmpeg as rec  # noqa: E402

SIZE = (1920, 1080)


def make_source(path: Path, seconds: float, fps: float) -> None:
    """A camera-like 1080p H.264 clip: moving test pattern, ~4 Mbit/s, a keyframe a second."""
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
                    f"testsrc2=size={SIZE[0]}x{SIZE[1]}:rate={fps:g}", "-t", f"{seconds:g}",
                    "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "4M", "-g", f"{fps:g}",
                    "-bf", "0", "-pix_fmt", "yuv420p", str(path)], check=True)


def cpu_of(proc: subprocess.Popen) -> float:
    """User + system seconds of a finished child (reaped here)."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0, f"ffmpeg failed ({proc.returncode})"
    return usage.ru_utime + usage.ru_stime


def footage_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.glob("*.mp4"))


def remux(source: Path, folder: Path) -> float:
    cmd = rec.remux_command("ffmpeg", str(source), None, folder / "r-%06d.mp4", 10.0)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    return cpu_of(proc)


def encode(source: Path, folder: Path, fps: float) -> float:
    decoder = subprocess.Popen(["ffmpeg", "-nostdin", "-v", "error", "-i", str(source), "-f",
                                "rawvideo", "-pix_fmt", "bgr24", "pipe:1"],
                               stdout=subprocess.PIPE)
    cmd = rec.encode_command("ffmpeg", SIZE, fps, "ultrafast", 26, 1.0,
                             folder / "e-%06d.mp4", 10.0)
    encoder = subprocess.Popen(cmd, stdin=decoder.stdout, stdout=subprocess.DEVNULL)
    assert decoder.stdout is not None
    decoder.stdout.close()
    seconds = cpu_of(encoder)
    decoder.wait()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--fps", type=float, default=15.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        source = work / "source.mp4"
        make_source(source, args.seconds, args.fps)
        results = {}
        for name in ("remux", "encode"):
            folder = work / name
            folder.mkdir()
            cpu = remux(source, folder) if name == "remux" else encode(source, folder, args.fps)
            per_min = cpu * 60.0 / args.seconds
            results[name] = per_min
            print(f"{name:6s}: {per_min:7.3f} CPU s per minute of footage "
                  f"({per_min / 60.0:.2%} of one core), "
                  f"{footage_bytes(folder) * 3600.0 / args.seconds / 1e9:.2f} GB per hour")
        print(f"1080p at {args.fps:g} fps, {args.seconds:g} s clip: encoding costs "
              f"{results['encode'] / max(results['remux'], 1e-9):.0f}x the CPU of remuxing; "
              f"target remux < 2% of one core: "
              f"{'met' if results['remux'] / 60.0 < 0.02 else 'NOT met'}")


if __name__ == "__main__":
    main()
