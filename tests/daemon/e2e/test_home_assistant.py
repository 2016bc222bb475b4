"""Home Assistant over a real mosquitto: every discovery message follows HA's documented
rules and points at topics that carry state; the detection switch really stops and resumes
the model; the snapshot image is a JPEG; a kill -9's stale retained counts are replaced at the
next start, before any frame."""

from __future__ import annotations

import json
import urllib.request
import uuid
from pathlib import Path

import cv2
import numpy as np

from tests.daemon.daemon_helpers import (
    DaemonProcess,
    daemon_config,
    free_port,
    looping_camera,
    wait_until,
    write_yaml,
)
from tests.daemon.ha_discovery_schema import parse_topic, validate
from tests.daemon.mqtt_subscriber import Subscriber
from tests.daemon.reliability.fault_helpers import health, wait_for

LABELS = ["square", "circle", "triangle"]


def ha_config(model: Path, video: Path, broker: tuple[str, int], prefix: str,
              discovery: str, http_port: int) -> dict:
    return daemon_config(
        model, video, cameras=[looping_camera(video)],
        events={"end_after_s": 1, "update_interval_s": 0.5},
        outputs={"http": {"enabled": True, "port": http_port},
                 "snapshots": {"enabled": True, "dir": "snapshots"},
                 "mqtt": {"enabled": True, "host": broker[0], "port": broker[1],
                          "topic_prefix": prefix, "client_id": f"d2s-{prefix}",
                          "outbox": {"path": "outbox.jsonl"},
                          "home_assistant": {"enabled": True, "discovery_prefix": discovery,
                                             "node_id": "testnode"}}})


def retained(sub: Subscriber, topic: str) -> bytes | None:
    with sub.lock:
        found = [p for t, p, keep in sub.messages if t == topic and keep]
    return found[-1] if found else None


def metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return response.read().decode()


def camera_stats(port: int) -> dict:
    return health(port).get("cameras", {}).get("cam", {})


def check_discovery(run_prefix: str, discovery: str, found: Subscriber,
                    broker: tuple[str, int]) -> dict[str, dict]:
    """Validate every discovery message; a newcomer must then find a retained state on every
    state topic they name."""
    with found.lock:
        configs = {t: validate(t, p, discovery) for t, p, _ in found.messages
                   if t.endswith("/config")}
    kinds = sorted(parse_topic(t, discovery)[0] for t in configs)
    assert kinds == ["binary_sensor"] * 3 + ["image", "sensor", "sensor", "sensor", "switch"]
    late, late_configs = Subscriber(*broker, run_prefix), Subscriber(*broker, discovery)
    try:  # newcomers see only what is retained
        assert wait_until(lambda: all(retained(late_configs, t) for t in configs), 30)
        states = {c.get("state_topic") for c in configs.values()} - {None}
        states.add(f"{run_prefix}/availability")
        assert wait_until(lambda: all(retained(late, t) is not None for t in states), 30), \
            (states, late.topics())
        assert retained(late, f"{run_prefix}/availability") == b"online"
        assert {retained(late, f"{run_prefix}/cam/objects/{x}") for x in LABELS} <= \
            {str(n).encode() for n in range(10)}
    finally:
        late.close()
        late_configs.close()
    return configs


def test_home_assistant_entities_and_the_detection_switch(  # noqa: ANN001
        demo_model: Path, demo_video, mosquitto: tuple[str, int], tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:6]
    prefix, discovery, port = f"ha-{tag}", f"hass-{tag}", free_port()
    state, found = Subscriber(*mosquitto, prefix), Subscriber(*mosquitto, discovery)
    video, _ = demo_video(20, seed=9)
    daemon = DaemonProcess(write_yaml(tmp_path / "c.yaml", ha_config(
        demo_model, video, mosquitto, prefix, discovery, port)), tmp_path)
    try:
        assert wait_until(lambda: len(found.messages) >= 8, 180), daemon.stderr()
        configs = check_discovery(prefix, discovery, found, mosquitto)
        with found.lock:
            found.messages.clear()
        found.client.publish(f"{discovery}/status", b"online", qos=1)  # HA restarted
        assert wait_until(lambda: {t for t, _, _ in found.messages} >= set(configs), 30), \
            "discovery not published again when Home Assistant came online"
        switch = configs[f"{discovery}/switch/testnode/cam_detection/config"]
        assert wait_until(lambda: state.on(switch["state_topic"])[-1:] == [b"ON"], 30)
        objects = [f"{prefix}/cam/objects/{x}" for x in LABELS]
        assert wait_until(lambda: any(p not in (b"0", None) for p in map(
            lambda t: (state.on(t) or [None])[-1], objects)), 120), daemon.stderr()

        state.client.publish(switch["command_topic"], switch["payload_off"], qos=1)
        assert wait_until(lambda: state.on(switch["state_topic"])[-1:] == [b"OFF"], 30)
        assert wait_until(lambda: camera_stats(port).get("detection") is False, 30)
        assert 'd2stream_detection_enabled{camera="cam"} 0' in metrics(port)
        # open events end (end_after_s: 1) without the model: counts fall to 0, snapshots come
        assert wait_for(lambda: all(state.on(t)[-1:] == [b"0"] for t in objects), 60,
                        "counts at 0 with detection off", daemon.stderr)
        image = configs[f"{discovery}/image/testnode/cam_snapshot/config"]["image_topic"]
        assert wait_until(lambda: state.on(image), 30), "no snapshot image"
        jpeg = cv2.imdecode(np.frombuffer(state.on(image)[-1], np.uint8), cv2.IMREAD_COLOR)
        assert jpeg is not None and jpeg.shape == (240, 320, 3)
        stopped = camera_stats(port)
        assert wait_until(lambda: camera_stats(port)["captured"] >= stopped["captured"] + 20, 60)
        assert camera_stats(port)["processed"] == stopped["processed"]  # the model is idle

        state.client.publish(switch["command_topic"], switch["payload_on"], qos=1)
        assert wait_until(lambda: state.on(switch["state_topic"])[-1:] == [b"ON"], 30)
        assert wait_for(lambda: camera_stats(port)["processed"] > stopped["processed"] + 5, 60,
                        "inferences after detection on", daemon.stderr)
        assert wait_until(lambda: any(state.on(t)[-1:] not in ([b"0"], []) for t in objects),
                          60), "no event after detection was switched back on"
        assert daemon.terminate() == 0, daemon.stderr()
        assert state.on(f"{prefix}/availability")[-1:] == [b"offline"]
    finally:
        daemon.kill()
        state.close()
        found.close()
    assert "detection off" in daemon.stderr() and "detection on" in daemon.stderr()


def test_stale_counts_of_a_killed_daemon_are_replaced_at_start(  # noqa: ANN001
        demo_model: Path, demo_video, mosquitto: tuple[str, int], tmp_path: Path) -> None:
    prefix = f"stale-{uuid.uuid4().hex[:6]}"
    video, _ = demo_video(20, seed=9)
    mqtt = {"enabled": True, "host": mosquitto[0], "port": mosquitto[1], "topic_prefix": prefix,
            "client_id": f"d2s-{prefix}", "outbox": {"path": "outbox.jsonl"}}
    config = daemon_config(demo_model, video, cameras=[looping_camera(video)],
                           outputs={"mqtt": mqtt})
    sub = Subscriber(*mosquitto, prefix)
    try:
        daemon = DaemonProcess(write_yaml(tmp_path / "a.yaml", config), tmp_path)
        objects = [f"{prefix}/cam/objects/{x}" for x in LABELS]
        assert wait_until(lambda: any(sub.on(t)[-1:] not in ([b"0"], []) for t in objects),
                          180), daemon.stderr()
        daemon.kill()  # SIGKILL: no end, no counts of 0
        stale = Subscriber(*mosquitto, prefix)
        assert wait_until(lambda: any(retained(stale, t) not in (b"0", None) for t in objects),
                          10), "the broker should keep the killed daemon's counts"
        stale.close()
        # The next start with a camera that does not answer yet: no frame of it ever arrives.
        # A second, working camera keeps the daemon running (with no camera at all it exits 1).
        dead = {"name": "cam", "reopen": {"on_start_failure": "retry"},
                "source": {"type": "opencv", "url": f"http://127.0.0.1:{free_port()}/x.mjpg",
                           "open_timeout_s": 1}}
        other = {**looping_camera(video), "name": "other"}
        again = DaemonProcess(write_yaml(tmp_path / "b.yaml",
                                         {**config, "cameras": [dead, other]}), tmp_path)
        try:
            assert wait_until(lambda: all(sub.on(t)[-1:] == [b"0"] for t in objects), 120), \
                again.stderr()
            fresh = Subscriber(*mosquitto, prefix)  # what the broker keeps now
            assert wait_until(lambda: all(retained(fresh, t) == b"0" for t in objects)
                              and json.loads(retained(fresh, f"{prefix}/cam/objects") or "{}")
                              == dict.fromkeys(LABELS, 0), 30), fresh.topics()
            fresh.close()
            assert again.terminate() == 0, again.stderr()
            assert again.stats()["cameras"]["cam"]["captured"] == 0  # before any frame
        finally:
            again.kill()
    finally:
        sub.close()
