"""One camera's recorder: an ffmpeg process writing segments, each indexed as it closes.

- *remux*: an H.264/H.265 stream or a video file played in real time is copied packet by packet
  (ffmpeg opens the source itself, next to the capture);
- *encode*: frames of a raw source (device, picamera2, image folder) or of a stream that cannot
  be remuxed are written to ffmpeg's stdin at ``record.encode.fps`` and encoded once (libx264).

When ffmpeg ends (camera gone, disk full) the segment it was writing is repaired or dropped and
a new process starts after a back-off. At start, segments a killed daemon left unindexed are
repaired (or dropped) and indexed.
"""

from __future__ import annotations

import logging
import os
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from daemon.config.record_schema import RecordSection
from daemon.config.schema import CameraSection, OpenCVSourceConfig, RecordingsOutput
from daemon.recordings import ffmpeg
from daemon.recordings.db import EventDB

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 20.0
BACKOFF_S = (1.0, 30.0)


def plan(camera: CameraSection, record: RecordSection) -> tuple[str, bool | None]:
    """``(url, file_loop)`` to remux, or ``("", None)`` when the source must be encoded."""
    src = camera.source
    if record.method == "encode" or not isinstance(src, OpenCVSourceConfig):
        return "", None
    kind = src.kind()
    if kind == "stream":
        return str(src.url), None
    if kind == "file" and src.realtime:
        return str(src.url), bool(src.loop)
    return "", None


class CameraRecorder:
    """Records one camera under ``<recordings.dir>/<camera>/``."""

    def __init__(self, camera: CameraSection, record: RecordSection, out: RecordingsOutput,
                 db: EventDB, before_restart: Callable[[], None] | None = None) -> None:
        self.name = camera.name
        self.record = record
        self.out = out
        self.db = db
        self.folder = out.dir / camera.name
        self.url, self.file_loop = plan(camera, record)
        self.encoding = not self.url
        self.before_restart = before_restart
        self.failure: str | None = None
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self._size: tuple[int, int] | None = None
        self._t0: float | None = None
        self._written = 0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"record-{self.name}",
                                        daemon=True)

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._thread.start()

    def stop(self, timeout: float) -> None:
        self._stopping.set()
        with self._lock:
            proc = self._proc
        if proc is not None and proc.poll() is None:
            if proc.stdin is not None:
                _close_quietly(proc.stdin)  # the encoder finishes its segment and exits
            else:
                proc.terminate()  # ffmpeg closes its segment on SIGTERM
        self._thread.join(timeout)
        if proc is not None and proc.poll() is None:
            proc.kill()

    # -- raw frames (encode) ------------------------------------------------------------------
    def feed(self, image: np.ndarray, t_wall: float) -> None:
        """Give the encoder the latest frame; written as many times as the rate asks."""
        if not self.encoding:
            return
        height, width = image.shape[:2]
        with self._lock:
            if self._size != (width, height):
                self._size = (width, height)
                if self._proc is not None:  # a new size needs a new encoder
                    _close_quietly(self._proc.stdin)
                return
            proc, t0 = self._proc, self._t0
        if proc is None or proc.stdin is None or t0 is None:
            return
        fps = self.record.encode.fps
        due = min(int((t_wall - t0) * fps) + 1 - self._written, round(fps * 2))
        if due <= 0:
            return
        data = np.ascontiguousarray(image).tobytes()
        try:
            for _ in range(due):
                proc.stdin.write(data)
            proc.stdin.flush()
            self._written += due
        except (OSError, ValueError):  # the encoder ended; the recorder thread restarts it
            pass

    # -- recorder thread ----------------------------------------------------------------------
    def _loop(self) -> None:
        self.index_leftovers()
        if not self.encoding:
            self._check_codec()
        delay = BACKOFF_S[0]
        while not self._stopping.is_set():
            started = time.monotonic()
            code = self._run_once()
            self.index_leftovers()
            if self._stopping.is_set():
                break
            if code is not None:
                self.failure = f"ffmpeg exited with status {code}"
                log.warning("camera %r: recorder %s; restarting in %.0fs", self.name,
                            self.failure, delay)
            if self.before_restart is not None:
                self.before_restart()
            delay = BACKOFF_S[0] if time.monotonic() - started > 60 else delay
            if self._stopping.wait(delay):
                break
            delay = min(delay * 2, BACKOFF_S[1])

    def _check_codec(self) -> None:
        """Remux or encode, by the stream's codec; an unreachable stream is probed again
        (with back-off) rather than taken for one that cannot be remuxed."""
        delay = BACKOFF_S[0]
        found = ffmpeg.probe(self.out.ffprobe, self.url, PROBE_TIMEOUT_S).codec
        while found is None:
            self.failure = f"cannot read the stream {self.url!r} (retrying)"
            if self._stopping.wait(delay):
                return
            delay = min(delay * 2, BACKOFF_S[1])
            found = ffmpeg.probe(self.out.ffprobe, self.url, PROBE_TIMEOUT_S).codec
        self.failure = None
        if found in ffmpeg.REMUXABLE:
            log.info("camera %r: recording %s by remuxing (no re-encoding)", self.name, found)
            return
        self.encoding = True
        log.warning("camera %r: the stream's video (%s) cannot be remuxed into MP4; recording "
                    "encodes the frames instead (libx264, %g fps)", self.name, found,
                    self.record.encode.fps)

    def _command(self, run: str) -> list[str] | None:
        pattern = self.folder / f"{run}-%06d.mp4"
        if not self.encoding:
            return ffmpeg.remux_command(self.out.ffmpeg, self.url, self.file_loop, pattern,
                                        self.out.segment_s)
        with self._lock:
            size = self._size
        if size is None:
            return None
        enc = self.record.encode
        return ffmpeg.encode_command(self.out.ffmpeg, size, enc.fps, enc.preset, enc.crf,
                                     enc.gop_s, pattern, self.out.segment_s)

    def _run_once(self) -> int | None:
        """Run one ffmpeg process until it ends; its exit status (``None``: not started)."""
        run = f"{time.time() * 1000:.0f}"
        cmd = None
        while cmd is None and not self._stopping.is_set():
            cmd = self._command(run)
            if cmd is None:
                self._stopping.wait(0.2)  # the encoder waits for a first frame (its size)
        if cmd is None:
            return None
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE if self.encoding else None,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=False,
                                    preexec_fn=ffmpeg.die_with_parent)  # noqa: PLW1509
        except OSError as exc:
            self.failure = f"cannot run {self.out.ffmpeg}: {exc.strerror or exc}"
            log.error("camera %r: %s", self.name, self.failure)
            return -1
        with self._lock:
            self._proc, self._t0, self._written = proc, time.time(), 0
        self._read_segments(proc, run)
        code = proc.wait()
        err = proc.stderr.read().decode(errors="replace").strip() if proc.stderr else ""
        with self._lock:
            self._proc = None
        if err and not self._stopping.is_set():
            log.warning("camera %r: ffmpeg: %s", self.name, err.splitlines()[-1][:300])
        return None if self._stopping.is_set() and code in (0, 255, -15) else code

    def _read_segments(self, proc: subprocess.Popen, run: str) -> None:
        """Index each segment ffmpeg reports closed (``name,start,end`` in stream seconds)."""
        assert proc.stdout is not None
        offset: float | None = float(self._t0 or 0.0) if self.encoding else None
        for raw in proc.stdout:
            try:
                name, start_s, end_s = raw.decode().strip().rsplit(",", 2)
                start, end = float(start_s), float(end_s)
            except ValueError:
                continue
            if not self.encoding:  # a live source: the stream clock anchored to arrival
                seen = time.time() - end
                if offset is not None and seen < offset - 0.05:
                    # a segment that arrived sooner: the earlier ones were late (a burst at
                    # connection), so this run's index moves back by the difference
                    self.db.shift_run(self.name, str(self.folder / f"{run}-"), seen - offset)
                offset = seen if offset is None else min(offset, seen)
            assert offset is not None
            self._index(self.folder / Path(name).name, offset + start, offset + end)
            self.failure = None

    def _index(self, path: Path, start: float, end: float) -> None:
        try:
            size = path.stat().st_size
        except OSError:
            return
        self.db.add_segment(self.name, path, start, end, size, self.encoding)

    def index_leftovers(self) -> None:
        """Repair (or drop) and index segment files the index does not know."""
        known = self.db.segment_paths(self.name)
        with self._lock:
            running = self._proc is not None
        if running:
            return
        for path in sorted(self.folder.glob("*.mp4")):
            if str(path) in known or path.name.endswith(".repair.mp4"):
                continue
            duration = ffmpeg.repair(self.out.ffmpeg, self.out.ffprobe, path)
            if duration <= 0:
                log.warning("camera %r: dropped unreadable segment %s", self.name, path.name)
                continue
            start = self._start_of(path)
            self._index(path, start, start + duration)
            log.info("camera %r: repaired and indexed segment %s (%.1fs)", self.name,
                     path.name, duration)

    def _start_of(self, path: Path) -> float:
        """Start time of an unindexed segment: the end of the one before it in its run."""
        run = path.name.split("-", 1)[0]
        previous = [s for s in self.db.segments(self.name, None, None)
                    if Path(s.path).name.split("-", 1)[0] == run]
        if previous:
            return max(s.end_time for s in previous)
        try:
            return int(run) / 1000.0
        except ValueError:
            return os.stat(path).st_mtime


def _close_quietly(stream: object) -> None:
    try:
        stream.close()  # type: ignore[attr-defined]
    except (OSError, ValueError):
        pass
