"""Snapshot sink: an annotated JPEG of each frame that produced events (rate-limited, pruned).

Files are ``<dir>/<camera>/<UTC time>-<frame seq>.jpg``, so an event (camera, frame) finds its
picture; at most ``max_files`` are kept per camera, the oldest removed first. A snapshot that
cannot be written (disk full, read-only folder) is skipped and ``/healthz`` reports the failure
until a write works again; a partial file is never left behind (written to ``.tmp``, renamed).
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from pathlib import Path

from daemon.config.errors import ConfigError
from daemon.config.schema import DrawSection, SnapshotOutput
from daemon.pipeline.metrics import Metrics
from daemon.pipeline.results import FrameResult
from daemon.sinks.annotate import annotate, encode_jpeg
from daemon.sinks.base import Sink

log = logging.getLogger(__name__)


def snapshot_name(result: FrameResult) -> str:
    """``20260102-030405.678-000042.jpg`` for the frame's capture time and sequence number."""
    t = result.frame.t_wall
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}"
    return f"{stamp}-{result.frame.seq:06d}.jpg"


class SnapshotSink(Sink):
    """Writes annotated JPEGs of event frames under ``outputs.snapshots.dir``."""

    name = "snapshots"

    def __init__(self, config: SnapshotOutput, draw: DrawSection, queue_size: int,
                 metrics: Metrics) -> None:
        super().__init__(queue_size, metrics)
        self.config = config
        self.draw = draw
        self._last: dict[str, float] = {}
        self._files: dict[str, deque[Path]] = {}

    def wants(self, result: FrameResult) -> bool:
        if not result.events:
            return False
        last = self._last.get(result.camera)
        if last is not None and result.frame.t_mono - last < self.config.min_interval_s:
            return False
        self._last[result.camera] = result.frame.t_mono
        return True

    def open(self) -> None:
        try:
            self.config.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create {self.config.dir}: {exc.strerror or exc}",
                              key="outputs.snapshots.dir") from None

    def _camera_files(self, camera: str) -> deque[Path]:
        if camera not in self._files:
            folder = self.config.dir / camera
            folder.mkdir(parents=True, exist_ok=True)
            self._files[camera] = deque(sorted(folder.glob("*.jpg")))
        return self._files[camera]

    def handle(self, result: FrameResult) -> None:
        image = result.annotated(self.draw, lambda r: annotate(r, self.draw))
        data = encode_jpeg(image, self.config.jpeg_quality)
        path = self.config.dir / result.camera / snapshot_name(result)
        tmp = path.with_suffix(".jpg.tmp")
        try:
            files = self._camera_files(result.camera)
            tmp.write_bytes(data)
            os.replace(tmp, path)
        except OSError as exc:  # disk full, read-only, folder removed: skip this snapshot
            _remove_quietly(tmp)
            self.metrics.faults.sink_add(self.name, "write_errors")
            self.report_failure(f"cannot write {path.parent}: {exc.strerror or exc}")
            return
        self.report_working()
        files.append(path)
        while len(files) > self.config.max_files:
            _remove_quietly(files.popleft())


def _remove_quietly(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("snapshots: cannot remove %s: %s", path, exc.strerror or exc)
