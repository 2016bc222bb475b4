"""Recording sink: starts a :class:`CameraRecorder` per recorded camera, hands raw frames to
the encoding ones, and runs retention and the disk budget (:class:`Pruner`).

``/healthz`` reports a recorder that keeps failing and footage deleted for lack of space.
"""

from __future__ import annotations

import logging
import shutil
import time

from daemon.config.errors import ConfigError
from daemon.config.schema import DaemonConfig
from daemon.recordings.clips import prune_clips
from daemon.recordings.db import EventDB
from daemon.recordings.migrations import DatabaseError
from daemon.recordings.recorder import CameraRecorder
from daemon.recordings.retention import Pruner
from daemon.sinks.base import Sink
from daemon.structures.metrics import Metrics
from daemon.structures.results import FrameResult

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 10.0


def clip_dir(config: DaemonConfig):  # noqa: ANN201 - Path
    return config.outputs.recordings.dir / ".clips"


class RecordingSink(Sink):
    """Footage of every camera whose ``record.mode`` is not ``off``."""

    name = "recordings"
    idle_interval = 1.0

    def __init__(self, config: DaemonConfig, queue_size: int, metrics: Metrics) -> None:
        super().__init__(queue_size, metrics)
        self.config = config
        self.out = config.outputs.recordings
        self.records = {c.name: config.camera_record(c) for c in config.enabled_cameras()
                        if config.camera_record(c).mode != "off"}
        self.cameras = [c for c in config.enabled_cameras() if c.name in self.records]
        self.db: EventDB | None = None
        self.pruner: Pruner | None = None
        self.recorders: dict[str, CameraRecorder] = {}
        self._next_prune = 0.0

    def wants(self, result: FrameResult) -> bool:
        recorder = self.recorders.get(result.camera)
        return (recorder is not None and recorder.encoding and not result.frameless
                and not result.closing)

    def keep(self, result: FrameResult):  # noqa: ANN201 - (camera, image, t_wall)
        frame = result.frame
        return frame.camera, frame.display_image, frame.t_wall

    def open(self) -> None:
        for key in ("ffmpeg", "ffprobe"):
            program = getattr(self.out, key)
            if shutil.which(program) is None:
                raise ConfigError(f"program not found: {program} (recording needs ffmpeg; "
                                  "Debian: apt install ffmpeg)", key=f"outputs.recordings.{key}")
        try:
            self.out.dir.mkdir(parents=True, exist_ok=True)
            self.db = EventDB(self.config.outputs.database.path)
        except OSError as exc:
            raise ConfigError(f"cannot create {self.out.dir}: {exc.strerror or exc}",
                              key="outputs.recordings.dir") from None
        except DatabaseError as exc:
            raise ConfigError(str(exc), key="outputs.database.path") from None
        snapshots = self.config.outputs.snapshots
        self.pruner = Pruner(self.db, self.out, self.records,
                             snapshots.dir if snapshots.enabled else None)
        self._prune()
        for camera in self.cameras:
            recorder = CameraRecorder(camera, self.records[camera.name], self.out, self.db,
                                      before_restart=self._prune)
            self.recorders[camera.name] = recorder
            recorder.start()

    def handle(self, item) -> None:  # noqa: ANN001 - what keep() made
        camera, image, t_wall = item
        self.recorders[camera].feed(image, t_wall)
        if time.monotonic() >= self._next_prune:
            self._prune()

    def idle(self) -> None:
        if time.monotonic() >= self._next_prune:
            self._prune()

    def close(self) -> None:
        for recorder in self.recorders.values():
            recorder.stop(STOP_TIMEOUT_S)
        if self.db is not None:
            self.db.close()

    def _prune(self) -> None:
        self._next_prune = time.monotonic() + self.out.prune_interval_s
        assert self.pruner is not None
        try:
            self.pruner.run()
            prune_clips(self.out.dir / ".clips")
        except Exception as exc:  # noqa: BLE001 - reported, retried next pass
            log.warning("recordings: retention pass failed: %s", exc)
        self._report()

    def _report(self) -> None:
        assert self.pruner is not None
        faults = self.metrics.faults
        faults.sink_set(self.name, "deleted_for_space", self.pruner.disk_full_deleted)
        if self.pruner.free_bytes is not None:
            faults.sink_set(self.name, "free_bytes", self.pruner.free_bytes)
        failing = [f"{name}: {r.failure}" for name, r in self.recorders.items() if r.failure]
        problem = "; ".join(filter(None, [self.pruner.low_space, *failing]))
        if problem:
            self.report_failure(problem)
        else:
            self.report_working()
