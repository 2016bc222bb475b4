"""Event log sink: every event as one JSON line (rotation and fsync policy from config)."""

from __future__ import annotations

from daemon.config.errors import ConfigError
from daemon.config.schema import EventLogOutput
from daemon.pipeline.metrics import Metrics
from daemon.pipeline.results import FrameResult
from daemon.sinks.base import Sink
from daemon.sinks.jsonl import JsonlWriter


class EventLogSink(Sink):
    """Appends ``result.events`` to ``outputs.event_log.path``."""

    name = "event_log"

    def __init__(self, config: EventLogOutput, queue_size: int, metrics: Metrics) -> None:
        super().__init__(queue_size, metrics)
        self.config = config
        self.writer = JsonlWriter(config.path, config.max_bytes, config.backups, config.fsync,
                                  config.fsync_interval_s)

    def wants(self, result: FrameResult) -> bool:
        return bool(result.events)

    def open(self) -> None:
        try:
            self.writer.open()
        except OSError as exc:
            raise ConfigError(f"cannot open {self.config.path}: {exc.strerror or exc}",
                              key="outputs.event_log.path") from None

    def handle(self, result: FrameResult) -> None:
        self.writer.write_lines(event.json for event in result.events)

    def idle(self) -> None:
        if self.config.fsync == "interval":
            self.writer.sync()

    def close(self) -> None:
        self.writer.close()
