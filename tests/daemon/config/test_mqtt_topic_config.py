"""MQTT topic rules in the config schema: a prefix the broker would refuse is a config error."""

from __future__ import annotations

import pytest

from daemon.config import ConfigError, parse_config

BASE = "model: {path: m.onnx}\ncameras: [{name: a, source: {type: opencv, url: 0}}]\n"


def _mqtt(prefix_yaml: str):
    text = BASE + f"outputs: {{mqtt: {{enabled: true, topic_prefix: {prefix_yaml}}}}}\n"
    return parse_config(text, name="c.yaml", check_files=False).outputs.mqtt


@pytest.mark.parametrize(("prefix", "problem"), [
    ('"d2\\0x"', "control characters ('\\x00' found)"),
    ('"a\\x1fb"', "control characters"),
    ('"home/+/cams"', "wildcards"),
    ('"home/#"', "wildcards"),
    ('"$SYS/d2"', "must not start with $"),
    ('"\\ud800"', "not valid UTF-8"),
    ('""', "must not be empty"),
    ("x" * 1025, "1025 bytes long"),
])
def test_prefix_the_broker_would_refuse_is_a_config_error(prefix: str, problem: str) -> None:
    with pytest.raises(ConfigError) as err:
        _mqtt(prefix)
    message = str(err.value)
    assert message.startswith("c.yaml: outputs.mqtt.topic_prefix: ") and problem in message
    assert "\n" not in message


@pytest.mark.parametrize("prefix", ["d2stream", "home/garage cam", "café/ünï", "a//b", "é" * 512])
def test_valid_prefixes_are_accepted(prefix: str) -> None:
    assert _mqtt(f'"{prefix}"').topic_prefix == prefix
