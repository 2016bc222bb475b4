"""ffmpeg/ffprobe command lines: probe a source, record segments (remux or encode), repair.

Recording runs in an ffmpeg process per camera (not in the daemon: no GIL contention with the
pipeline, no Python video library, and a crash of the muxer never takes the daemon with it).
Segments are fragmented MP4 (a fragment per keyframe), so a process killed mid-segment leaves
every complete fragment readable; ffmpeg reports each closed segment on its stdout (CSV).
"""

from __future__ import annotations

import ctypes
import json
import logging
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

REMUXABLE = ("h264", "hevc")
_FRAGMENTED = "movflags=+frag_keyframe+empty_moov+default_base_moof"
_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """``preexec_fn``: the child gets SIGKILL when the daemon dies (even by kill -9)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the child may outlive a killed daemon
        pass


@dataclass(frozen=True)
class Probe:
    codec: str | None
    width: int = 0
    height: int = 0
    duration: float = 0.0


def probe(ffprobe: str, url: str, timeout: float) -> Probe:
    """Codec, size and duration of the first video stream (``codec`` ``None``: unreadable)."""
    args = [ffprobe, "-v", "error", "-select_streams", "v:0", "-show_entries",
            "stream=codec_name,width,height:format=duration", "-of", "json"]
    if url.startswith("rtsp"):
        args += ["-rtsp_transport", "tcp"]
    try:
        out = subprocess.run([*args, url], capture_output=True, timeout=timeout, text=True,
                             check=False)
        info = json.loads(out.stdout or "{}")
    except (subprocess.TimeoutExpired, OSError, ValueError):
        return Probe(None)
    streams = info.get("streams") or [{}]
    stream = streams[0]
    try:
        duration = float((info.get("format") or {}).get("duration") or 0.0)
    except ValueError:
        duration = 0.0
    return Probe(stream.get("codec_name"), int(stream.get("width") or 0),
                 int(stream.get("height") or 0), duration)


def segment_output(pattern: Path, segment_s: float) -> list[str]:
    """Output options: fragmented MP4 segments of ``segment_s``, closed ones listed on stdout."""
    return ["-f", "segment", "-segment_time", f"{segment_s:g}", "-reset_timestamps", "1",
            "-segment_format", "mp4", "-segment_format_options", _FRAGMENTED,
            "-segment_list", "pipe:1", "-segment_list_type", "csv", str(pattern)]


def remux_command(ffmpeg: str, url: str, file_loop: bool | None, pattern: Path,
                  segment_s: float) -> list[str]:
    """Copy the first video stream of ``url`` into segments (``file_loop``: ``None`` for a
    live stream, else whether a video file played in real time loops)."""
    args = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error"]
    if url.startswith("rtsp"):
        args += ["-rtsp_transport", "tcp"]
    if file_loop is not None:
        args += ["-re", *(["-stream_loop", "-1"] if file_loop else [])]
    return [*args, "-i", url, "-map", "0:v:0", "-c", "copy",
            *segment_output(pattern, segment_s)]


def encode_command(ffmpeg: str, size: tuple[int, int], fps: float, preset: str, crf: int,
                   gop_s: float, pattern: Path, segment_s: float) -> list[str]:
    """Encode raw BGR frames read from stdin with libx264 (``ultrafast``/``zerolatency``)."""
    gop = max(1, round(fps * gop_s))
    return [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-f", "rawvideo",
            "-pix_fmt", "bgr24", "-s", f"{size[0]}x{size[1]}", "-framerate", f"{fps:g}",
            "-i", "pipe:0", "-c:v", "libx264", "-preset", preset, "-tune", "zerolatency",
            "-crf", str(crf), "-g", str(gop), "-pix_fmt", "yuv420p",
            *segment_output(pattern, segment_s)]


def repair(ffmpeg: str, ffprobe: str, path: Path, timeout: float = 60.0) -> float:
    """Rewrite a segment a killed recorder left behind as a plain MP4 with its complete
    fragments; returns its duration in seconds, 0 when nothing in it is readable (then it is
    removed)."""
    fixed = path.with_name(path.stem + ".repair.mp4")
    # Read as a pipe: a seekable read looks for the index at the end of the file, which a
    # killed writer never wrote; read in order, every complete fragment comes through.
    cmd = [ffmpeg, "-hide_banner", "-loglevel", "error", "-y", "-f", "mp4", "-i", "pipe:0",
           "-map", "0:v:0", "-c", "copy", "-movflags", "+faststart", str(fixed)]
    try:
        with open(path, "rb") as source:
            ok = subprocess.run(cmd, stdin=source, capture_output=True,
                                timeout=timeout).returncode == 0
    except (subprocess.TimeoutExpired, OSError):
        ok = False
    duration = probe(ffprobe, str(fixed), timeout).duration if ok and fixed.exists() else 0.0
    if duration > 0:
        fixed.replace(path)
        return duration
    fixed.unlink(missing_ok=True)
    path.unlink(missing_ok=True)
    return 0.0
