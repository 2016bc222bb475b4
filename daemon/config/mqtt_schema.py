"""The ``outputs.mqtt`` section: broker, outbox, commands, snapshots and Home Assistant."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from daemon.config.path_types import StatePath

_NODE_ID_RE = re.compile(r"[^A-Za-z0-9_-]")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OutboxSection(_Section):
    enabled: bool = True
    path: StatePath = Field(default=Path("var/mqtt-outbox.jsonl"), validate_default=True)
    max_bytes: int = Field(default=20_000_000, ge=4096)
    fsync: Literal["always", "interval", "never"] = "always"
    fsync_interval_s: float = Field(default=1.0, gt=0)


class HomeAssistantSection(_Section):
    """MQTT discovery for Home Assistant (docs/home-assistant.md)."""

    enabled: bool = False
    # Home Assistant's discovery prefix (its MQTT integration setting, ``homeassistant``).
    discovery_prefix: str = Field(default="homeassistant", pattern=r"^[^#+\s]+$")
    # The node id in discovery topics and unique ids (None: the client id, made topic-safe).
    node_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,64}$")
    # The device's name in Home Assistant, the camera appended (None: "d2stream <node id>").
    device_name: str | None = Field(default=None, min_length=1, max_length=100)


class MqttOutput(_Section):
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    client_id: str = "d2stream"
    username: str | None = None
    password: str | None = None
    tls: bool = False
    topic_prefix: str = Field(default="d2stream", pattern=r"^[^#+]+$")
    keepalive_s: int = Field(default=30, ge=5, le=65535)
    reconnect_min_s: float = Field(default=1.0, gt=0)
    reconnect_max_s: float = Field(default=30.0, gt=0)
    max_queued: int = Field(default=1000, ge=1)
    inflight: int = Field(default=20, ge=1, le=1000)
    outbox: OutboxSection = Field(default_factory=dict, validate_default=True)
    # Obey ON/OFF on <prefix>/<camera>/detect/set (None: when home_assistant is enabled).
    commands: bool | None = None
    # The latest event snapshot as a retained JPEG on <prefix>/<camera>/snapshot (None: when
    # home_assistant is enabled and outputs.snapshots is).
    snapshots: bool | None = None
    home_assistant: HomeAssistantSection = Field(default_factory=dict, validate_default=True)

    @model_validator(mode="after")
    def _prefixes(self) -> MqttOutput:
        ha = self.home_assistant
        if ha.enabled and ha.discovery_prefix.strip("/") == self.topic_prefix.strip("/"):
            raise ValueError("home_assistant.discovery_prefix must differ from topic_prefix")
        return self

    def commands_on(self) -> bool:
        return self.home_assistant.enabled if self.commands is None else self.commands

    def snapshots_on(self, snapshot_files: bool) -> bool:
        """Whether event snapshots are published (they need ``outputs.snapshots``)."""
        if self.snapshots is None:
            return self.home_assistant.enabled and snapshot_files
        return self.snapshots

    def node_id(self) -> str:
        """The Home Assistant node id: ``home_assistant.node_id`` or the client id, topic-safe."""
        return self.home_assistant.node_id or _NODE_ID_RE.sub("_", self.client_id)[:64] or "d2s"
