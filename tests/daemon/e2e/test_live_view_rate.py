"""The live view streams at the camera's frame rate, not the model's: a real MJPEG camera on
loopback, ``d2stream run`` with every frame going to the model (so that the model is the slow
part), and a plain HTTP client counting the MJPEG frames it receives while ``/healthz`` says
how many frames the camera delivered over the same seconds."""

from __future__ import annotations

import http.client
import re
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.daemon.daemon_helpers import DaemonProcess, daemon_config, free_port, write_yaml
from tests.daemon.reliability.fault_helpers import health, report_figure, wait_for
from tests.daemon.state_camera import StateCamera

CAMERA_FPS = 15.0
WINDOW_S = 8.0


@pytest.fixture()
def camera() -> Iterator[StateCamera]:
    cam = StateCamera(fps=CAMERA_FPS)
    cam.set_mode("serve")
    yield cam
    cam.close()


def count_mjpeg_frames(port: int, camera: str, seconds: float) -> tuple[int, float]:
    """``(whole JPEG frames received, seconds it took)`` reading the stream for ``seconds``."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", f"/stream/{camera}.mjpg")
    response = conn.getresponse()
    assert response.status == 200
    match = re.fullmatch(r"multipart/x-mixed-replace; boundary=(\S+)",
                         response.getheader("Content-Type") or "")
    assert match
    boundary = b"--" + match.group(1).encode()
    count, started = 0, time.monotonic()
    while time.monotonic() - started < seconds:
        if response.fp.readline().strip() != boundary:
            continue
        headers = {}
        while (line := response.fp.readline().strip()):
            key, _, value = line.decode().partition(":")
            headers[key.lower()] = value.strip()
        data = response.fp.read(int(headers["content-length"]))
        assert cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) is not None
        count += 1
    took = time.monotonic() - started
    conn.close()
    return count, took


def test_the_stream_runs_at_the_camera_rate_not_the_model_rate(
        tmp_path: Path, demo_model: Path, demo_video, camera: StateCamera) -> None:  # noqa: ANN001
    video, _ = demo_video(4)
    port = free_port()
    config = daemon_config(
        demo_model, video,
        cameras=[{"name": "door", "source": {"type": "opencv", "url": camera.url}}],
        outputs={"http": {"enabled": True, "port": port, "max_fps": 30}},
        detect={"fps": 0}, motion={"enabled": False})  # the model sees all it can
    daemon = DaemonProcess(write_yaml(tmp_path / "c.yaml", config), tmp_path)
    try:
        wait_for(lambda: health(port).get("cameras", {}).get("door", {}).get("processed", 0)
                 > 3, 180, "inference", daemon.stderr)
        before = health(port)["cameras"]["door"]
        frames, took = count_mjpeg_frames(port, "door", WINDOW_S)
        after = health(port)["cameras"]["door"]
    finally:
        code = daemon.terminate()
    assert code == 0, daemon.stderr()
    delivered = after["captured"] - before["captured"]  # what the camera delivered meanwhile
    inferred = after["processed"] - before["processed"]
    assert delivered > 0.5 * CAMERA_FPS * WINDOW_S  # the camera did deliver
    assert frames >= 0.8 * delivered, (frames, delivered, inferred)
    report_figure("live_view_fps", round(frames / took, 2))
    report_figure("live_view_camera_fps", round(delivered / took, 2))
    report_figure("live_view_inference_fps", round(inferred / took, 2))
