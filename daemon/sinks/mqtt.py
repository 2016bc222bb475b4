"""MQTT sink: events to ``<prefix>/<camera>/events`` (QoS 1), availability with a last will.

Object counts (open events per label) go to ``<prefix>/<camera>/objects`` (JSON) and
``<prefix>/<camera>/objects/<label>`` (a number), retained, whenever they change.

``<prefix>/availability`` is ``online`` (retained) while connected; the broker publishes the
last will ``offline`` if the daemon vanishes, and a clean stop publishes ``offline`` itself.
paho-mqtt reconnects in the background with backoff; events published while the broker is
away wait in paho's queue (``max_queued``) and are sent after reconnection.
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from typing import Any

from daemon.config.errors import ConfigError
from daemon.config.schema import MqttOutput
from daemon.pipeline.metrics import Metrics
from daemon.pipeline.results import FrameResult
from daemon.sinks.base import Sink

log = logging.getLogger(__name__)

CLOSE_TIMEOUT_S = 3.0


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
    """Publishes every event's JSON to the broker of ``outputs.mqtt``."""

    name = "mqtt"

    def __init__(self, config: MqttOutput, queue_size: int, metrics: Metrics) -> None:
        super().__init__(queue_size, metrics)
        self.config = config
        self.availability = availability_topic(config.topic_prefix)
        self._client: Any = None
        self._mqtt: Any = None
        self._pending: deque[Any] = deque()
        self.connected = False

    def wants(self, result: FrameResult) -> bool:
        return bool(result.events) or result.counts is not None

    def open(self) -> None:
        try:
            import paho.mqtt.client as mqtt  # noqa: PLC0415 - optional dependency
        except ImportError:
            raise ConfigError("paho-mqtt is not installed (pip install 'd2stream[mqtt]')",
                              key="outputs.mqtt.enabled") from None
        self._mqtt = mqtt
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
        client.max_queued_messages_set(cfg.max_queued)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        try:
            client.connect_async(cfg.host, cfg.port, cfg.keepalive_s)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot use broker {cfg.host}:{cfg.port}: {exc}",
                              key="outputs.mqtt.host") from None
        client.loop_start()
        self._client = client
        log.info("MQTT: connecting to %s:%d (topics under %s/)", cfg.host, cfg.port,
                 cfg.topic_prefix)

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any,
                    properties: Any = None) -> None:
        if getattr(reason, "is_failure", False):
            log.warning("MQTT: broker refused the connection: %s", reason)
            return
        self.connected = True
        client.publish(self.availability, "online", qos=1, retain=True)
        log.info("MQTT: connected to %s:%d", self.config.host, self.config.port)

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any,
                       properties: Any = None) -> None:
        if self.connected:
            log.warning("MQTT: disconnected (%s); reconnecting", reason)
        self.connected = False

    def handle(self, result: FrameResult) -> None:
        topic = event_topic(self.config.topic_prefix, result.camera)
        for event in result.events:
            self._publish(topic, event.json)
        if result.counts is not None:
            prefix = self.config.topic_prefix
            self._publish(objects_topic(prefix, result.camera),
                          json.dumps(result.counts, separators=(",", ":")), retain=True)
            for label, count in result.counts.items():
                self._publish(objects_topic(prefix, result.camera, label), str(count),
                              retain=True)
        while self._pending and self._pending[0].is_published():
            self._pending.popleft()

    def _publish(self, topic: str, payload: str, retain: bool = False) -> None:
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        if info.rc == self._mqtt.MQTT_ERR_QUEUE_SIZE:
            self.metrics.sink_drop(self.name)
            return
        self._pending.append(info)

    def close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        deadline = time.monotonic() + CLOSE_TIMEOUT_S
        if self.connected:
            self._pending.append(client.publish(self.availability, "offline", qos=1,
                                                retain=True))
        while self.connected and self._pending and time.monotonic() < deadline:
            if self._pending[0].is_published():
                self._pending.popleft()
            else:
                time.sleep(0.01)
        if self._pending:
            log.warning("MQTT: %d message(s) not acknowledged at stop", len(self._pending))
        client.disconnect()
        client.loop_stop()
