"""``d2stream demo-video OUT``: write a video of moving shapes for demos without a camera."""

from __future__ import annotations

import argparse
import logging

from daemon.demo.synthetic import write_demo_video

log = logging.getLogger(__name__)


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, got {text!r}") from None
    if w < 32 or h < 32:
        raise argparse.ArgumentTypeError("the video must be at least 32x32")
    return w, h


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("output", help="video file to write (.mp4: mp4v, .avi: MJPG)")
    parser.add_argument("--frames", type=int, default=300, help="number of frames (300)")
    parser.add_argument("--size", type=_size, default=(320, 240), help="WIDTHxHEIGHT (320x240)")
    parser.add_argument("--fps", type=float, default=10.0, help="frame rate (10)")
    parser.add_argument("--seed", type=int, default=0, help="scene seed (0)")


def run(args: argparse.Namespace) -> int:
    try:
        write_demo_video(args.output, args.frames, args.size, args.fps, args.seed)
    except OSError as exc:
        log.error("%s", exc)
        return 1
    log.info("wrote %s (%d frames, %dx%d, %.0f fps)", args.output, args.frames, *args.size,
             args.fps)
    return 0
