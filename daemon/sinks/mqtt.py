"""MQTT sink: events to ``<prefix>/<camera>/events`` (QoS 1), availability with a last will.

Object counts (open events per label) go to ``<prefix>/<camera>/objects`` (JSON) and
``<prefix>/<camera>/objects/<label>`` (a number), retained, whenever they change (the latest
counts are published again after a reconnection; counts are state, not journaled).

``<prefix>/availability`` is ``online`` (retained) while connected; the broker publishes the
last will ``offline`` if the daemon vanishes, and a clean stop publishes ``offline`` itself.

Delivery: every event first goes to the :class:`~daemon.sinks.outbox.Outbox` (a journal on
disk, ``outputs.mqtt.outbox``), then is published; it leaves the outbox only when the broker
acknowledged it (PUBACK). While the broker is away, events accumulate in the outbox; after the
reconnection (paho-mqtt reconnects with backoff) they are published in order, at most
``inflight`` at a time. After a crash or a power cut, the next start replays what was not
acknowledged. Delivery is at least once: a subscriber may see a message twice (QoS 1), and
deduplicates by the event's ``event_id``.

State, commands and Home Assistant discovery (:mod:`daemon.sinks.ha_discovery`): once the model
is loaded, every camera's counts are published with each tracked label at 0 (a crash's stale
retained counts are replaced at start, before the first frame); ``commands`` subscribes to
``<prefix>/<camera>/detect/set`` and switches detection (:class:`DetectionSwitches`), its state
retained on ``<prefix>/<camera>/detect``; ``snapshots`` publishes each ended event's best frame
as a retained JPEG on ``<prefix>/<camera>/snapshot``; ``home_assistant`` publishes the
discovery messages after each connection and whenever Home Assistant comes online.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from typing import Any

from daemon.config.errors import ConfigError
from daemon.config.schema import MqttOutput, SnapshotOutput
from daemon.events.switches import DetectionSwitches
from daemon.sinks.annotate import encode_jpeg
from daemon.sinks.base import EventsOnly, Sink
from daemon.sinks.ha_discovery import (
    OFF,
    ON,
    Discovery,
    command_topic,
    detect_topic,
    parse_command,
    snapshot_topic,
)
from daemon.sinks.outbox import Message, Outbox, message_key
from daemon.sinks.snapshots import draw_event
from daemon.structures.metrics import Metrics
from daemon.structures.results import FrameResult, ModelInfo

log = logging.getLogger(__name__)

CLOSE_TIMEOUT_S = 3.0
#: a broker not reached this long after start counts as a failure in /healthz
UNREACHABLE_AFTER_S = 10.0


def event_topic(prefix: str, camera: str) -> str:
    return f"{prefix.rstrip('/')}/{camera}/events"


def objects_topic(prefix: str, camera: str, label: str | None = None) -> str:
    """``<prefix>/<camera>/objects[/<label>]`` (``/``, ``+``, ``#`` in a label become ``_``)."""
    base = f"{prefix.rstrip('/')}/{camera}/objects"
    if label is None:
        return base
    return f"{base}/{label.translate(str.maketrans('/+#', '___'))}"


def availability_topic(prefix: str) -> str:
    return f"{prefix.rstrip('/')}/availability"


class MqttSink(Sink):
    """Publishes every event's JSON to the broker of ``outputs.mqtt`` through the outbox."""

    name = "mqtt"
    idle_interval = 0.2

    def __init__(self, config: MqttOutput, queue_size: int, metrics: Metrics,
                 switches: DetectionSwitches | None = None,
                 snapshots: SnapshotOutput | None = None) -> None:
        super().__init__(queue_size, metrics)
        self.config = config
        self.switches = switches
        self.commands = switches is not None and config.commands_on()
        self.publish_snapshots = config.snapshots_on(snapshots is not None and snapshots.enabled)
        self.jpeg_quality = snapshots.jpeg_quality if snapshots is not None else 85
        self.discovery: Discovery | None = None
        self._labels: dict[str, list[str]] = {}
        self._requests: deque[tuple[str, Any]] = deque()  # from other threads, see _take_requests
        self._switches_due: set[str] = set()
        self._discovery_due = False
        self._images: dict[str, bytes] = {}  # latest snapshot per camera
        self._images_due: set[str] = set()
        self.availability = availability_topic(config.topic_prefix)
        box = config.outbox
        self.outbox = Outbox(box.path if box.enabled else None, box.max_bytes, box.fsync,
                             box.fsync_interval_s,
                             max_messages=None if box.enabled else config.max_queued)
        self._client: Any = None
        self._inflight: dict[int, str] = {}  # paho message id -> outbox key (sink thread only)
        self._sent: set[str] = set()
        self._acks: deque[int] = deque()  # filled by paho's thread
        self._counts: dict[str, dict[str, int]] = {}  # changed per camera, not yet published
        self._latest_counts: dict[str, dict[str, int]] = {}
        self._published_counts: dict[str, dict[str, int]] = {}
        self._republish = False
        self.connected = False
        self._connected_once = threading.Event()
        self._opened_mono = time.monotonic()

    def keep(self, result: FrameResult) -> EventsOnly:
        return EventsOnly.of(result, snapshots=self.publish_snapshots)

    def wants(self, result: FrameResult) -> bool:
        return bool(result.events) or result.counts is not None or (
            self.publish_snapshots and bool(result.snapshots))

    def model_loaded(self, model: ModelInfo, counts: dict[str, dict[str, int]]) -> None:
        self._labels = {camera: list(c) for camera, c in counts.items()}
        if self.config.home_assistant.enabled:
            self.discovery = Discovery(self.config, model.name, self.commands,
                                       self.publish_snapshots)
        self._requests.append(("counts", {camera: dict(c) for camera, c in counts.items()}))
        self._requests.append(("discovery", None))
        self._wake()

    def open(self) -> None:
        try:
            import paho.mqtt.client as mqtt  # noqa: PLC0415 - optional dependency
        except ImportError:
            raise ConfigError("paho-mqtt is not installed (pip install 'd2stream[mqtt]')",
                              key="outputs.mqtt.enabled") from None
        self.outbox.open()
        self._opened_mono = time.monotonic()
        self._client = self._create_client(mqtt)
        cfg = self.config
        try:
            self._client.connect_async(cfg.host, cfg.port, cfg.keepalive_s)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot use broker {cfg.host}:{cfg.port}: {exc}",
                              key="outputs.mqtt.host") from None
        self._client.loop_start()
        self._report()
        log.info("MQTT: connecting to %s:%d (topics under %s/)", cfg.host, cfg.port,
                 cfg.topic_prefix)

    def _create_client(self, mqtt: Any) -> Any:
        cfg = self.config
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cfg.client_id,
                             protocol=mqtt.MQTTv311, clean_session=True)
        if cfg.username is not None:
            client.username_pw_set(cfg.username, cfg.password)
        if cfg.tls:
            client.tls_set()
        client.will_set(self.availability, "offline", qos=1, retain=True)
        client.reconnect_delay_set(max(1, round(cfg.reconnect_min_s)),
                                   max(1, round(cfg.reconnect_max_s)))
        client.max_inflight_messages_set(cfg.inflight)
        client.max_queued_messages_set(0)  # bounded by the outbox and ``inflight``
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        if self.commands and self.switches is not None:
            self.switches.listen(lambda camera, on: self._requests.append(("switch", camera)))
        return client

    # -- paho's thread -------------------------------------------------------------------------
    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any,
                    properties: Any = None) -> None:
        if getattr(reason, "is_failure", False):
            log.warning("MQTT: broker refused the connection: %s", reason)
            return
        self.connected = True
        self._connected_once.set()
        prefix = self.config.topic_prefix
        if self.commands:
            client.subscribe(command_topic(prefix, "+"), qos=1)
        if self.config.home_assistant.enabled:
            client.subscribe(f"{self.config.home_assistant.discovery_prefix.rstrip('/')}/status",
                             qos=1)
        client.publish(self.availability, "online", qos=1, retain=True)
        log.info("MQTT: connected to %s:%d", self.config.host, self.config.port)
        self._requests.append(("discovery", None))
        self._requests.append(("switch", None))
        self._republish = True
        self._wake()

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        topic, payload = str(msg.topic), bytes(msg.payload)
        if self.discovery is not None and topic == self.discovery.status_topic:
            if payload.strip() == b"online":  # Home Assistant (re)started: announce again
                self._requests.append(("discovery", None))
                self._requests.append(("switch", None))
                self._wake()
            return
        command = parse_command(self.config.topic_prefix, topic, payload) \
            if self.commands and self.switches is not None else None
        if command is None:
            log.warning("MQTT: ignored %r on %s (expected ON or OFF on "
                        "<prefix>/<camera>/detect/set)", payload[:40], topic)
            return
        camera, on = command
        try:
            self.switches.set(camera, on)  # type: ignore[union-attr]
        except KeyError:
            log.warning("MQTT: detection command for unknown camera %r", camera)
            return
        self._requests.append(("switch", camera))  # confirmed even when unchanged
        self._wake()

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any,
                       properties: Any = None) -> None:
        if self.connected and self._client is not None:
            log.warning("MQTT: disconnected (%s); reconnecting", reason)
        self.connected = False
        self._wake()

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: Any = None,
                    properties: Any = None) -> None:
        self._acks.append(mid)
        self._wake()

    def _wake(self) -> None:
        with self._cond:
            self._cond.notify()

    # -- sink thread ---------------------------------------------------------------------------
    def handle(self, result: FrameResult | EventsOnly) -> None:  # type: ignore[override]
        if result.events:
            topic = event_topic(self.config.topic_prefix, result.camera)
            self.outbox.add(Message(message_key(e), topic, e.json) for e in result.events)
        if result.counts is not None:
            self._counts[result.camera] = dict(result.counts)
            self._latest_counts[result.camera] = dict(result.counts)
        for job in getattr(result, "snapshots", ()):
            image = draw_event(job.best.frame.display_image, job.best.box,
                               f"{job.label} {job.best.score:.0%}")
            self._images[result.camera] = encode_jpeg(image, self.jpeg_quality)
            self._images_due.add(result.camera)
        self._pump()

    def idle(self) -> None:
        self._pump()

    def _pump(self) -> None:
        """Record acknowledgements, retry a failed journal, publish pending messages."""
        while self._acks:
            key = self._inflight.pop(self._acks.popleft(), None)
            if key is not None:
                self._sent.discard(key)
                self.outbox.ack(key)
        self.outbox.retry()
        self._take_requests()
        if self.connected and self._client is not None:
            self._publish_state()
            self._publish_counts()
            for message in self.outbox.pending(skip=self._sent):
                if len(self._inflight) >= self.config.inflight:
                    break
                info = self._client.publish(message.topic, message.payload, qos=1)
                self._inflight[info.mid] = message.key
                self._sent.add(message.key)
        self._report()

    def _take_requests(self) -> None:
        """Requests of other threads (model loaded, connected, commands) into this thread's
        state."""
        while self._requests:
            kind, value = self._requests.popleft()
            if kind == "counts":
                self._latest_counts.update(value)
                self._counts.update({k: dict(v) for k, v in value.items()})
            elif kind == "discovery":
                self._discovery_due = self.discovery is not None and bool(self._labels)
            elif kind == "switch" and self.commands and self.switches is not None:
                self._switches_due |= set(self.switches.cameras) if value is None else {value}

    def _publish_state(self) -> None:
        """Discovery messages, detection states and snapshots that are due (all retained)."""
        client, prefix = self._client, self.config.topic_prefix
        if self._discovery_due and self.discovery is not None:
            self._discovery_due = False
            for topic, payload in self.discovery.messages(self._labels):
                client.publish(topic, payload, qos=1, retain=True)
        if self._switches_due and self.switches is not None:
            for camera in sorted(self._switches_due):
                client.publish(detect_topic(prefix, camera),
                               ON if self.switches.enabled(camera) else OFF, qos=1, retain=True)
            self._switches_due.clear()
        if self._republish:
            self._images_due |= set(self._images)
        for camera in sorted(self._images_due):
            client.publish(snapshot_topic(prefix, camera), self._images[camera], qos=1,
                           retain=True)
        self._images_due.clear()

    def _publish_counts(self) -> None:
        """The latest object counts (retained), once connected; all of them after a
        reconnection, so that the broker's retained state is current. Counts equal to those
        last published are not sent again (the start's zeros, then the first frame's)."""
        force = self._republish
        if force:
            self._republish = False
            self._counts.update({k: dict(v) for k, v in self._latest_counts.items()})
        prefix = self.config.topic_prefix
        for camera, counts in self._counts.items():
            if not force and self._published_counts.get(camera) == counts:
                continue
            self._published_counts[camera] = dict(counts)
            self._client.publish(objects_topic(prefix, camera),
                                 json.dumps(counts, separators=(",", ":")), qos=1, retain=True)
            for label, count in counts.items():
                self._client.publish(objects_topic(prefix, camera, label), str(count), qos=1,
                                     retain=True)
        self._counts.clear()

    def _report(self) -> None:
        for key, value in self.outbox.view().items():
            self.metrics.faults.sink_set(self.name, key, value)
        problem = self.outbox.journal_error
        if problem is None and not self.connected and (
                self._connected_once.is_set()
                or time.monotonic() - self._opened_mono > UNREACHABLE_AFTER_S):
            problem = (f"broker {self.config.host}:{self.config.port} unreachable; "
                       f"{len(self.outbox)} event(s) wait in the outbox")
        if problem is None:
            self.report_working()
        else:
            self.report_failure(problem)

    def close(self) -> None:
        client = self._client
        if client is None:
            return
        deadline = time.monotonic() + CLOSE_TIMEOUT_S
        while self.connected and len(self.outbox) and time.monotonic() < deadline:
            self._pump()
            time.sleep(0.02)
        if self.connected:
            info = client.publish(self.availability, "offline", qos=1, retain=True)
            while not info.is_published() and self.connected and time.monotonic() < deadline:
                time.sleep(0.01)
        if len(self.outbox):
            log.warning("MQTT: %d message(s) not acknowledged at stop; kept in the outbox for "
                        "the next start", len(self.outbox))
        self._client = None
        client.disconnect()
        client.loop_stop()
        self.outbox.close()
