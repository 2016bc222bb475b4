"""Cameras that go away and come back, a camera missing at start, and SIGTERM in every state a
camera can be in (opening, reading, reopening, waiting between attempts), each with a real
``d2stream run`` process and a real MJPEG camera on loopback (:class:`StateCamera`)."""

from __future__ import annotations

import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.daemon.daemon_helpers import (
    DaemonProcess,
    daemon_config,
    free_port,
    looping_camera,
    subprocess_env,
    write_yaml,
)
from tests.daemon.reliability.fault_helpers import health, now, report_figure, wait_for
from tests.daemon.state_camera import StateCamera

STOP_TIMEOUT_S = 5.0
SLOW_S = 60  # camera timeouts far beyond the stop timeout: a blocked call must not matter


@pytest.fixture()
def camera() -> Iterator[StateCamera]:
    cam = StateCamera(fps=10)
    yield cam
    cam.close()


def door(url: str, **source: Any) -> dict[str, Any]:
    return {"name": "door", "source": {"type": "opencv", "url": url, **source}}


def start_daemon(tmp_path: Path, demo_model: Path, video: Path, cameras: list[dict[str, Any]],
                 env: dict[str, str] | None = None) -> tuple[DaemonProcess, int]:
    port = free_port()
    config = daemon_config(demo_model, video, cameras=cameras,
                           outputs={"http": {"enabled": True, "port": port}},
                           service={"stop_timeout_s": STOP_TIMEOUT_S, "status_interval_s": 0.5})
    daemon = DaemonProcess(write_yaml(tmp_path / "c.yaml", config), tmp_path, env=env)
    return daemon, port


def door_state(port: int) -> dict[str, Any]:
    return health(port).get("cameras", {}).get("door", {})


def test_camera_back_after_a_long_outage_is_reopened_within_5s(
        tmp_path: Path, demo_model: Path, demo_video, camera: StateCamera) -> None:  # noqa: ANN001
    """Default reopen settings, an outage of 17 s (the old 1, 2, 4, 8, 16 s backoff would
    have tried next 14 s after the return): reopened within 5 s of the camera's return."""
    video, _ = demo_video(4)
    camera.set_mode("serve")
    daemon, port = start_daemon(tmp_path, demo_model, video, [door(camera.url)])
    try:
        wait_for(lambda: health(port).get("status") == "ok", 180, "a healthy start",
                 daemon.stderr)
        camera.set_mode("down")
        wait_for(lambda: door_state(port).get("connected") is False, 60, "the loss",
                 daemon.stderr)
        gone = now()
        wait_for(lambda: now() - gone >= 17, 20, "the outage")
        camera.set_mode("serve")
        back = now()
        wait_for(lambda: door_state(port).get("connected"), 60, "the reopening", daemon.stderr)
        reconnect_s = now() - back
    finally:
        code = daemon.terminate()
    assert code == 0, daemon.stderr()
    assert reconnect_s < 5.0, daemon.stderr()
    warnings = [line for line in daemon.stderr().splitlines() if "unreachable" in line]
    assert 0 < len(warnings) <= 6  # attempts 1, 2, 4, 8, 16: not one line per probe
    report_figure("camera_reconnect_after_return_s", round(reconnect_s, 2))


class NotifySocket:
    """A datagram socket standing in for systemd's ``NOTIFY_SOCKET``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.messages: list[str] = []

    def receive(self) -> list[str]:
        try:
            while True:
                self.messages.append(self.sock.recv(65536).decode())
        except OSError:
            return self.messages


def test_a_camera_missing_at_start_does_not_stop_the_daemon(
        tmp_path: Path, demo_model: Path, demo_video, camera: StateCamera) -> None:  # noqa: ANN001
    video, _ = demo_video(40, seed=5)
    notify = NotifySocket(tmp_path / "notify.sock")
    daemon, port = start_daemon(tmp_path, demo_model, video,
                                [looping_camera(video), door(camera.url, open_timeout_s=3)],
                                env=subprocess_env({"NOTIFY_SOCKET": str(notify.path)}))
    try:
        running = wait_for(lambda: (h := health(port)) and h.get("ready")
                           and h["cameras"]["cam"]["processed"] > 2 and h, 180,
                           "the working camera to be processed", daemon.stderr)
        assert running["status"] == "degraded"  # and says why:
        assert running["cameras"]["door"]["connected"] is False
        assert running["cameras"]["door"]["state"] in ("waiting", "opening")
        wait_for(lambda: any("door" in m and "DISCONNECTED, retrying" in m
                             for m in notify.receive()), 30, "STATUS= naming the camera")
        assert any("READY=1" in m for m in notify.messages)
        camera.set_mode("serve")  # the camera is late, not gone
        back = now()
        wait_for(lambda: door_state(port).get("connected"), 60, "the late camera",
                 daemon.stderr)
        late_s = now() - back
        wait_for(lambda: health(port).get("status") == "ok", 60, "every camera ok",
                 daemon.stderr)
    finally:
        code = daemon.terminate()
    assert code == 0, daemon.stderr()
    assert "running without 'door' until it opens" in daemon.stderr()
    assert late_s < 5.0
    report_figure("late_camera_opened_after_return_s", round(late_s, 2))


def test_no_camera_at_all_exits_1_naming_them(tmp_path: Path, demo_model: Path,
                                              demo_video) -> None:  # noqa: ANN001
    video, _ = demo_video(4)
    urls = [f"http://127.0.0.1:{free_port()}/{i}.mjpg" for i in range(2)]
    cameras = [{**door(url, open_timeout_s=2), "name": f"door{i}"} for i, url in enumerate(urls)]
    daemon, _ = start_daemon(tmp_path, demo_model, video, cameras)
    assert daemon.wait(180) == 1  # not 78: systemd starts it again later
    errors = [line for line in daemon.stderr().splitlines() if line.startswith("ERROR")]
    assert errors == ["ERROR daemon.run: no camera could be opened: "
                      f"camera 'door0': cannot open stream '{urls[0]}'; "
                      f"camera 'door1': cannot open stream '{urls[1]}'"], daemon.stderr()


def _reach(state: str, camera: StateCamera, port: int, daemon: DaemonProcess) -> None:
    """Bring the camera ``door`` into ``state`` (the daemon already started)."""
    if state == "opening":  # first open, the camera never answers
        wait_for(lambda: door_state(port).get("state") == "opening", 120, "opening",
                 daemon.stderr)
        return
    wait_for(lambda: (d := door_state(port)) and d["state"] == "reading"
             and d["captured"] > 3, 180, "frames", daemon.stderr)
    if state == "reading":  # blocked in a read: the camera froze, the connection stays
        camera.set_mode("stall")
        wait_for(lambda: (door_state(port).get("last_frame_age_s") or 0) > 1.5, 30,
                 "the stall", daemon.stderr)
    elif state == "reopening":  # blocked in a reopen: the camera accepts, never answers
        camera.set_mode("blackhole")
        wait_for(lambda: (d := door_state(port)) and d["state"] == "opening"
                 and not d["connected"], 60, "the reopening", daemon.stderr)
    else:  # waiting between attempts: the camera refuses connections
        camera.set_mode("down")
        wait_for(lambda: door_state(port).get("state") == "waiting", 60, "waiting",
                 daemon.stderr)


@pytest.mark.parametrize("state", ["opening", "reading", "reopening", "waiting"])
def test_sigterm_stops_within_stop_timeout_in_every_camera_state(
        state: str, tmp_path: Path, demo_model: Path, demo_video,  # noqa: ANN001
        camera: StateCamera) -> None:
    video, _ = demo_video(4)
    camera.set_mode("blackhole" if state == "opening" else "serve")
    daemon, port = start_daemon(tmp_path, demo_model, video,
                                [door(camera.url, open_timeout_s=SLOW_S,
                                      read_timeout_s=SLOW_S)])
    try:
        _reach(state, camera, port, daemon)
        sent = time.monotonic()
        daemon.proc.send_signal(signal.SIGTERM)
        code = daemon.wait(STOP_TIMEOUT_S + 60)
        took = time.monotonic() - sent
    finally:
        daemon.kill()
    assert code == 0, daemon.stderr()
    assert "Traceback" not in daemon.stderr()
    assert took < STOP_TIMEOUT_S, f"{state}: {took:.1f}s\n{daemon.stderr()[-3000:]}"
    report_figure(f"sigterm_to_exit_s_{state}", round(took, 2))
