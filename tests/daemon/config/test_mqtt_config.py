"""outputs.mqtt: commands, snapshots and home_assistant keys, defaults and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.config import ConfigError, parse_config

BASE = """
model: {path: m.onnx}
cameras: [{name: cam, source: {type: opencv, url: "rtsp://camera.local/s"}}]
outputs:
  snapshots: {enabled: SNAP}
  mqtt: MQTT
"""


def config(mqtt: str, snapshots: bool = True):  # noqa: ANN201
    text = BASE.replace("SNAP", str(snapshots).lower()).replace("MQTT", mqtt)
    return parse_config(text, name="config.yaml", base_dir=Path("/"), env={}, check_files=False)


def test_home_assistant_turns_commands_and_snapshots_on() -> None:
    plain = config("{enabled: true}").outputs.mqtt
    assert not plain.commands_on() and not plain.snapshots_on(True)
    ha = config("{enabled: true, home_assistant: {enabled: true}}").outputs.mqtt
    assert ha.commands_on() and ha.snapshots_on(True) and not ha.snapshots_on(False)
    assert ha.node_id() == "d2stream"
    off = config("{enabled: true, commands: false, home_assistant: {enabled: true}}")
    assert not off.outputs.mqtt.commands_on()
    named = config('{enabled: true, client_id: "pi 4/a", home_assistant: {enabled: true}}')
    assert named.outputs.mqtt.node_id() == "pi_4_a"


@pytest.mark.parametrize(("mqtt", "snapshots", "expected"), [
    ("{enabled: true, snapshots: true}", False,
     "config.yaml: outputs: mqtt.snapshots publishes the snapshot of each event: it needs "
     "outputs.snapshots.enabled: true"),
    ("{enabled: true, home_assistant: {enabled: true, discovery_prefix: d2stream}}", True,
     "config.yaml: outputs.mqtt: home_assistant.discovery_prefix must differ from "
     "topic_prefix"),
    ("{home_assistant: {node_id: 'a b'}}", True,
     "config.yaml: outputs.mqtt.home_assistant.node_id: string should match pattern"),
    ("{home_assistant: {discovery_prefix: 'ha/#'}}", True,
     "config.yaml: outputs.mqtt.home_assistant.discovery_prefix: string should match"),
])
def test_bad_keys_are_named(mqtt: str, snapshots: bool, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        config(mqtt, snapshots)
    assert str(info.value).startswith(expected), str(info.value)
