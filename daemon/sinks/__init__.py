"""Output side of the pipeline: preview window, HTTP live view, event log, MQTT, snapshots.

Each sink runs in its own thread with its own drop-oldest queue (:class:`Sink`).
"""

from __future__ import annotations

from collections.abc import Callable

from daemon.config.schema import DaemonConfig
from daemon.events.switches import DetectionSwitches
from daemon.sinks.base import Sink
from daemon.sinks.event_journal import CONSUMERS, Journal
from daemon.structures.metrics import Metrics

__all__ = ["Sink", "build_sinks"]


def build_sinks(config: DaemonConfig, metrics: Metrics, request_stop: Callable[[], None],
                switches: DetectionSwitches | None = None,
                journal: Journal | None = None) -> list[Sink]:
    """The enabled sinks of ``config.outputs`` (not started). Imports each only when enabled.
    ``switches``: detection on/off per camera, which MQTT commands may change. With a
    ``journal``, the outputs registered in ``CONSUMERS`` read their events from it."""
    out = config.outputs
    frames, events = out.frame_queue_size, out.event_queue_size
    cameras = [c.name for c in config.enabled_cameras()]
    sinks: list[Sink] = []
    if out.event_log.enabled:
        from daemon.sinks.event_log import EventLogSink  # noqa: PLC0415

        if journal is not None:
            sinks.append(CONSUMERS["event_log"](out.event_log, journal, metrics))
        else:
            sinks.append(EventLogSink(out.event_log, events, metrics))
    if out.database.enabled:
        from daemon.sinks.event_db import EventDbSink  # noqa: PLC0415

        if journal is not None:
            sinks.append(CONSUMERS["database"](out.database, journal, metrics))
        else:
            sinks.append(EventDbSink(out.database, events, metrics))
    if out.recordings.enabled:
        from daemon.sinks.recording import RecordingSink  # noqa: PLC0415

        sinks.append(RecordingSink(config, frames, metrics))
    if out.mqtt.enabled:
        from daemon.sinks.mqtt import MqttSink  # noqa: PLC0415

        if journal is not None:
            import daemon.sinks.mqtt_journal  # noqa: F401, PLC0415 - registers the consumer

            sinks.append(CONSUMERS["mqtt"](out.mqtt, journal, metrics, switches=switches,
                                           snapshots=out.snapshots))
        else:
            sinks.append(MqttSink(out.mqtt, events, metrics, switches=switches,
                                  snapshots=out.snapshots))
    if out.snapshots.enabled:
        from daemon.sinks.snapshots import SnapshotSink  # noqa: PLC0415

        if journal is not None:
            sinks.append(CONSUMERS["snapshots"](out.snapshots, config.draw, journal, metrics))
        else:
            sinks.append(SnapshotSink(out.snapshots, config.draw, events, metrics))
    if out.http.enabled:
        from daemon.sinks.http_view import HttpSink  # noqa: PLC0415

        http = HttpSink(out.http, config.draw, cameras, frames, metrics)
        if out.database.enabled:
            from daemon.sinks.http_api import ReviewApi  # noqa: PLC0415

            http.api = ReviewApi(config)
        sinks.append(http)
    if out.preview.enabled:
        from daemon.sinks.preview import PreviewSink  # noqa: PLC0415

        sinks.append(PreviewSink(out.preview, config.draw, frames, metrics, request_stop))
    return sinks
