"""A paho-mqtt client for the tests: collects every message under a topic prefix."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import paho.mqtt.client as mqtt


class Subscriber:
    """A paho client collecting every message under ``prefix/#`` (re-subscribing after a
    reconnection)."""

    def __init__(self, host: str, port: int, prefix: str) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                  client_id=f"test-{uuid.uuid4().hex[:8]}")
        self.client.on_connect = lambda c, *a: c.subscribe(f"{prefix}/#", qos=1)
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(1, 2)
        self.client.connect(host, port, 30)
        self.client.loop_start()
        assert self.subscribed.wait(15), "could not subscribe to the test broker"

    def _on_message(self, client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))

    def topics(self) -> list[str]:
        """Every topic a message arrived on, in order of first arrival."""
        with self.lock:
            return list(dict.fromkeys(t for t, _, _ in self.messages))

    def on(self, topic: str) -> list[bytes]:
        with self.lock:
            return [payload for t, payload, _ in self.messages if t == topic]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
