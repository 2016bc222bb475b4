"""MQTT against a broker of the test's own: the last will when the daemon is killed, and events
still arriving after the broker restarts (paho reconnects; QoS 1 events wait meanwhile)."""

from __future__ import annotations

import json
import signal
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.daemon.daemon_helpers import (
    DaemonProcess,
    daemon_config,
    free_port,
    looping_camera,
    start_mosquitto,
    stop_process,
    wait_until,
    write_yaml,
)
from tests.daemon.mqtt_subscriber import Subscriber


def live_config(model: Path, video: Path, port: int, prefix: str) -> dict:
    return daemon_config(model, video, cameras=[looping_camera(video)],
        events={"update_interval_s": 0.5},  # moving shapes: an update about every second
        outputs={"mqtt": {"enabled": True, "port": port, "topic_prefix": prefix,
                          "client_id": f"d2s-{prefix}", "keepalive_s": 5,
                          "reconnect_min_s": 1, "reconnect_max_s": 1}})


@dataclass
class LiveRun:
    """A broker on its own port, a subscriber and a daemon publishing to it under ``prefix``."""

    port: int
    prefix: str
    broker: subprocess.Popen
    subscriber: Subscriber
    daemon: DaemonProcess


@contextmanager
def live_run(tmp_path: Path, model: Path, demo_video, name: str) -> Iterator[LiveRun]:  # noqa: ANN001
    """Start broker, subscriber and daemon; stop whatever is left of them (the broker last
    assigned to ``run.broker``) at the end."""
    port, prefix = free_port(), f"{name}-{uuid.uuid4().hex[:6]}"
    broker = start_mosquitto(tmp_path, port)
    subscriber = Subscriber("127.0.0.1", port, prefix)
    video, _ = demo_video(20, seed=9)
    daemon = DaemonProcess(write_yaml(tmp_path / "c.yaml",
                                      live_config(model, video, port, prefix)), tmp_path)
    run = LiveRun(port, prefix, broker, subscriber, daemon)
    try:
        yield run
    finally:
        daemon.kill()
        subscriber.close()
        stop_process(run.broker)


def test_last_will_marks_a_killed_daemon_offline(demo_model: Path, demo_video,  # noqa: ANN001
                                                 tmp_path: Path) -> None:
    with live_run(tmp_path, demo_model, demo_video, "will") as run:
        daemon, subscriber = run.daemon, run.subscriber
        availability = f"{run.prefix}/availability"
        assert wait_until(lambda: subscriber.on(availability) == [b"online"], 120), \
            daemon.stderr()
        daemon.proc.send_signal(signal.SIGKILL)  # no clean stop: the broker speaks for it
        daemon.proc.wait(10)
        assert wait_until(lambda: subscriber.on(availability)[-1:] == [b"offline"], 30)
        late = Subscriber("127.0.0.1", run.port, run.prefix)  # retained: newcomers see it too
        assert wait_until(lambda: late.on(availability) == [b"offline"], 10)
        late.close()


def test_events_keep_flowing_after_a_broker_restart(demo_model: Path, demo_video,  # noqa: ANN001
                                                    tmp_path: Path) -> None:
    with live_run(tmp_path, demo_model, demo_video, "restart") as run:
        daemon, subscriber = run.daemon, run.subscriber
        topic = f"{run.prefix}/cam/events"
        assert wait_until(lambda: len(subscriber.on(topic)) >= 3, 120), daemon.stderr()
        stop_process(run.broker)
        before = max(json.loads(p)["after"]["frame"] for p in subscriber.on(topic))
        run.broker = start_mosquitto(tmp_path, run.port)  # same port, a new broker process
        assert wait_until(lambda: any(json.loads(p)["after"]["frame"] > before + 2
                                      for p in subscriber.on(topic)), 60), daemon.stderr()
        assert subscriber.on(f"{run.prefix}/availability").count(b"online") >= 2  # re-announced
        assert daemon.proc.poll() is None
        assert daemon.terminate() == 0, daemon.stderr()
        assert "MQTT: disconnected" in daemon.stderr()
