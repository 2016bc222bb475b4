"""Home Assistant's documented MQTT discovery rules, as a validator for the tests.

Sources (home-assistant.io, ``integrations/mqtt`` "MQTT Discovery" and each platform's page):
the topic is ``<discovery_prefix>/<component>/[<node_id>/]<object_id>/config`` with node and
object ids of ``[a-zA-Z0-9_-]``; the payload is a JSON object (a config, an empty payload
removes the entity); ``device`` ties an entity to the device registry only with ``unique_id``
and needs ``identifiers`` or ``connections``; ``availability`` and ``availability_topic`` are
exclusive. Required per platform: ``binary_sensor`` and ``sensor``: ``state_topic``;
``switch``: ``command_topic`` (without it HA cannot switch it); ``camera``: ``topic``;
``image``: exactly one of ``image_topic`` / ``url_topic``.
"""

from __future__ import annotations

import json
import re
from typing import Any

REQUIRED: dict[str, tuple[str, ...]] = {
    "binary_sensor": ("state_topic",),
    "sensor": ("state_topic",),
    "switch": ("command_topic",),
    "camera": ("topic",),
    "image": (),
}
EXCLUSIVE_ONE_OF: dict[str, tuple[str, ...]] = {"image": ("image_topic", "url_topic")}
_ID = r"[a-zA-Z0-9_-]+"
TOPIC_FIELDS = ("state_topic", "command_topic", "topic", "image_topic", "url_topic",
                "availability_topic", "json_attributes_topic")


def parse_topic(topic: str, prefix: str) -> tuple[str, str | None, str]:
    """``(component, node_id, object_id)`` of a discovery topic (AssertionError if not one)."""
    match = re.fullmatch(rf"{re.escape(prefix)}/({_ID})/(?:({_ID})/)?({_ID})/config", topic)
    assert match, f"{topic}: not <prefix>/<component>/[<node_id>/]<object_id>/config"
    return match.group(1), match.group(2), match.group(3)


def validate(topic: str, payload: bytes, prefix: str) -> dict[str, Any]:
    """The config of one discovery message, checked against the rules above."""
    component, _, _ = parse_topic(topic, prefix)
    assert component in REQUIRED, f"{topic}: component {component!r} not expected"
    config = json.loads(payload)
    assert isinstance(config, dict), f"{topic}: payload is not a JSON object"
    for key in REQUIRED[component]:
        assert isinstance(config.get(key), str) and config[key], f"{topic}: {key} missing"
    one_of = [k for k in EXCLUSIVE_ONE_OF.get(component, ()) if k in config]
    if component in EXCLUSIVE_ONE_OF:
        assert len(one_of) == 1, f"{topic}: exactly one of {EXCLUSIVE_ONE_OF[component]}"
    assert not ("availability" in config and "availability_topic" in config), \
        f"{topic}: availability and availability_topic are exclusive"
    for key in TOPIC_FIELDS:
        if key in config:
            value = config[key]
            assert isinstance(value, str) and value and not set(value) & {"+", "#"}, \
                f"{topic}: {key} {value!r} is not a topic one can publish to"
    if "device" in config:
        device = config["device"]
        assert config.get("unique_id"), f"{topic}: device without unique_id"
        assert device.get("identifiers") or device.get("connections"), \
            f"{topic}: device needs identifiers or connections"
    for key in ("payload_available", "payload_not_available", "payload_on", "payload_off"):
        assert key not in config or isinstance(config[key], str), f"{topic}: {key}"
    return config
