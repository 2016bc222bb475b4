"""Home Assistant discovery messages and detection commands (pure functions)."""

from __future__ import annotations

import json

from daemon.config.mqtt_schema import MqttOutput
from daemon.sinks.ha_discovery import Discovery, object_id, parse_command
from tests.daemon.ha_discovery_schema import parse_topic, validate


def discovery(**mqtt: object) -> Discovery:
    config = MqttOutput.model_validate({"enabled": True, "client_id": "pi 4/garage",
                                        "home_assistant": {"enabled": True}, **mqtt})
    return Discovery(config, "mask_rcnn_demo", commands=True, snapshots=True)


def test_every_message_follows_home_assistants_rules() -> None:
    messages = discovery().messages({"drive": ["person", "traffic light"], "door": ["car"]})
    configs = {t: validate(t, p.encode(), "homeassistant") for t, p in messages}
    kinds = sorted(parse_topic(t, "homeassistant")[0] for t in configs)
    assert kinds == ["binary_sensor"] * 3 + ["image"] * 2 + ["sensor"] * 3 + ["switch"] * 2
    assert len({c["unique_id"] for c in configs.values()}) == len(configs) == 10
    occupancy = configs["homeassistant/binary_sensor/pi_4_garage/drive_traffic_light_occupancy"
                        "/config"]
    assert occupancy["state_topic"] == "d2stream/drive/objects/traffic light"
    assert occupancy["device_class"] == "occupancy"
    assert occupancy["availability_topic"] == "d2stream/availability"
    switch = configs["homeassistant/switch/pi_4_garage/door_detection/config"]
    assert (switch["command_topic"], switch["state_topic"]) == ("d2stream/door/detect/set",
                                                                "d2stream/door/detect")
    image = configs["homeassistant/image/pi_4_garage/door_snapshot/config"]
    assert (image["image_topic"], image["content_type"]) == ("d2stream/door/snapshot",
                                                             "image/jpeg")
    assert {c["device"]["identifiers"][0] for c in configs.values()} == {
        "d2stream_pi_4_garage_drive", "d2stream_pi_4_garage_door"}


def test_switch_and_image_only_when_enabled() -> None:
    config = MqttOutput.model_validate({"home_assistant": {"enabled": True, "node_id": "n"}})
    plain = Discovery(config, "m", commands=False, snapshots=False)
    topics = [t for t, _ in plain.messages({"cam": ["square"]})]
    assert topics == ["homeassistant/binary_sensor/n/cam_square_occupancy/config",
                      "homeassistant/sensor/n/cam_square_count/config"]
    assert json.loads(plain.messages({"cam": ["square"]})[0][1])["device"]["name"] == \
        "d2stream n cam"


def test_commands() -> None:
    assert parse_command("d2s", "d2s/cam/detect/set", b"OFF") == ("cam", False)
    assert parse_command("d2s/", "d2s/cam/detect/set", b" on\n") == ("cam", True)
    for topic, payload in (("d2s/cam/detect/set", b"toggle"), ("d2s/cam/detect", b"ON"),
                           ("x/cam/detect/set", b"ON"), ("d2s/a/b/detect/set", b"ON"),
                           ("d2s//detect/set", b"ON")):
        assert parse_command("d2s", topic, payload) is None, topic
    assert object_id("cam", "sports ball", "count") == "cam_sports_ball_count"
