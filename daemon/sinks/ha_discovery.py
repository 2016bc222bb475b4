"""MQTT topics of the daemon's state and commands, and Home Assistant's discovery messages.

State and command topics, under ``outputs.mqtt.topic_prefix`` (``<prefix>``):

- ``<prefix>/availability``: ``online`` / ``offline`` (retained; the broker's last will);
- ``<prefix>/<camera>/objects/<label>``: open events of that label (retained number);
- ``<prefix>/<camera>/detect``: ``ON`` / ``OFF``, whether the model runs (retained);
- ``<prefix>/<camera>/detect/set``: send ``ON`` or ``OFF`` to switch detection;
- ``<prefix>/<camera>/snapshot``: the latest ended event's best frame (retained JPEG).

Discovery (Home Assistant's documented scheme, ``<discovery prefix>/<component>/<node id>/
<object id>/config``, retained JSON): one device per camera with, per tracked label, an
occupancy ``binary_sensor`` and a count ``sensor``; an ``image`` fed by the snapshot topic;
a ``switch`` for detection. Every entity is unavailable while ``<prefix>/availability`` says
``offline`` (docs/home-assistant.md).
"""

from __future__ import annotations

import json
import re
from typing import Any

from daemon import __version__
from daemon.config.mqtt_schema import MqttOutput

ON, OFF = "ON", "OFF"
_ID_RE = re.compile(r"[^A-Za-z0-9_-]")


def camera_topic(prefix: str, camera: str, *parts: str) -> str:
    return "/".join([prefix.rstrip("/"), camera, *parts])


def detect_topic(prefix: str, camera: str) -> str:
    return camera_topic(prefix, camera, "detect")


def command_topic(prefix: str, camera: str) -> str:
    return camera_topic(prefix, camera, "detect", "set")


def snapshot_topic(prefix: str, camera: str) -> str:
    return camera_topic(prefix, camera, "snapshot")


def parse_command(prefix: str, topic: str, payload: bytes) -> tuple[str, bool] | None:
    """``(camera, on)`` of a detection command, or ``None`` when it is not one."""
    head = prefix.rstrip("/") + "/"
    if not topic.startswith(head) or not topic.endswith("/detect/set"):
        return None
    camera = topic[len(head):-len("/detect/set")]
    word = payload.decode("utf-8", "replace").strip().upper()
    if not camera or "/" in camera or word not in (ON, OFF):
        return None
    return camera, word == ON


def object_id(*parts: str) -> str:
    """An object id of Home Assistant's character class ``[a-zA-Z0-9_-]``."""
    return _ID_RE.sub("_", "_".join(parts))


class Discovery:
    """Discovery messages of one daemon: ``messages(cameras)`` -> ``[(topic, payload)]``."""

    def __init__(self, config: MqttOutput, model_name: str, commands: bool,
                 snapshots: bool) -> None:
        self.config = config
        self.prefix = config.topic_prefix.rstrip("/")
        self.node = config.node_id()
        self.root = config.home_assistant.discovery_prefix.rstrip("/")
        self.model_name = model_name
        self.commands = commands
        self.snapshots = snapshots

    @property
    def status_topic(self) -> str:
        """Where Home Assistant announces itself (``online`` after a restart)."""
        return f"{self.root}/status"

    def _entity(self, camera: str, kind: str, suffix: str, name: str,
                **fields: Any) -> tuple[str, str]:
        oid = object_id(camera, suffix)
        default = "d2stream" if self.node == "d2stream" else f"d2stream {self.node}"
        device_name = self.config.home_assistant.device_name or default
        payload = {
            "name": name,
            "unique_id": object_id("d2stream", self.node, oid),
            "availability_topic": f"{self.prefix}/availability",
            "payload_available": "online",
            "payload_not_available": "offline",
            "device": {"identifiers": [object_id("d2stream", self.node, camera)],
                       "name": f"{device_name} {camera}", "manufacturer": "d2stream",
                       "model": self.model_name, "sw_version": __version__},
            "origin": {"name": "d2stream", "sw_version": __version__},
            **fields,
        }
        topic = f"{self.root}/{kind}/{self.node}/{oid}/config"
        return topic, json.dumps(payload, separators=(",", ":"), ensure_ascii=False)

    def camera_messages(self, camera: str, labels: list[str]) -> list[tuple[str, str]]:
        out = []
        for label in labels:
            state = camera_topic(self.prefix, camera, "objects",
                                 label.translate(str.maketrans("/+#", "___")))
            out.append(self._entity(
                camera, "binary_sensor", f"{label}_occupancy", f"{label} occupancy",
                state_topic=state, device_class="occupancy",
                value_template="{{ 'ON' if (value | int(0)) > 0 else 'OFF' }}"))
            out.append(self._entity(
                camera, "sensor", f"{label}_count", f"{label} count", state_topic=state,
                unit_of_measurement="objects", state_class="measurement",
                icon="mdi:counter"))
        if self.snapshots:
            out.append(self._entity(camera, "image", "snapshot", "Snapshot",
                                    image_topic=snapshot_topic(self.prefix, camera),
                                    content_type="image/jpeg"))
        if self.commands:
            out.append(self._entity(camera, "switch", "detection", "Detection",
                                    command_topic=command_topic(self.prefix, camera),
                                    state_topic=detect_topic(self.prefix, camera),
                                    payload_on=ON, payload_off=OFF, icon="mdi:cctv"))
        return out

    def messages(self, cameras: dict[str, list[str]]) -> list[tuple[str, str]]:
        """Every camera's entities; ``cameras``: camera -> tracked labels."""
        return [m for camera, labels in cameras.items()
                for m in self.camera_messages(camera, labels)]
