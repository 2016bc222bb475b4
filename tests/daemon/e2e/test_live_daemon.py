"""End to end with a live (real-time, looping) camera: systemd notifications on a real
NOTIFY_SOCKET, the HTTP live view (healthz, metrics, MJPEG, the page in headless Chromium), a
worker killed mid-run, and SIGTERM ending the run with exit 0 and a valid event log.

The tests share one daemon (module fixture) and run in file order; the last one stops it.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from daemon.demo.synthetic import ShapeScene
from tests.daemon.daemon_helpers import (
    DaemonProcess,
    daemon_config,
    free_port,
    looping_camera,
    read_jsonl,
    require_program,
    subprocess_env,
    wait_until,
    write_yaml,
)

SEED = 4


@dataclass
class NotifyListener:
    """A datagram socket playing systemd's part: records every notification."""

    path: str
    sock: socket.socket
    messages: list[tuple[float, str]] = field(default_factory=list)

    @classmethod
    def start(cls) -> NotifyListener:
        folder = tempfile.mkdtemp(prefix="d2n", dir="/tmp")
        path = os.path.join(folder, "notify")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        sock.settimeout(0.2)
        listener = cls(path, sock)
        threading.Thread(target=listener._loop, daemon=True).start()
        return listener

    def _loop(self) -> None:
        while True:
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            self.messages.append((time.monotonic(), data.decode()))

    def texts(self) -> list[str]:
        return [text for _, text in list(self.messages)]

    def close(self) -> None:
        self.sock.close()
        os.unlink(self.path)
        os.rmdir(os.path.dirname(self.path))


@dataclass
class LiveDaemon:
    daemon: DaemonProcess
    port: int
    notify: NotifyListener
    workdir: Path
    returncode: int | None = None

    def get(self, path: str) -> tuple[int, str, bytes]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as r:
                return r.status, r.headers.get("Content-Type", ""), r.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers.get("Content-Type", ""), exc.read()

    def health(self) -> dict[str, Any]:
        return json.loads(self.get("/healthz")[2])

    def stop(self) -> int:
        if self.returncode is None:
            self.returncode = self.daemon.terminate(timeout=60)
        return self.returncode


@pytest.fixture(scope="module")
def live(tmp_path_factory, demo_model, demo_video) -> Iterator[LiveDaemon]:  # noqa: ANN001
    workdir = tmp_path_factory.mktemp("live")
    video, _ = demo_video(30, seed=SEED)
    port = free_port()
    config = daemon_config(demo_model, video, cameras=[looping_camera(video)],
        outputs={"http": {"enabled": True, "port": port, "max_fps": 10}},
        service={"status_interval_s": 1.0}, worker={"restart_delay_s": 0.2},
        draw={"min_score": 0.9})  # fewer overlays: the page check looks for the video itself
    notify = NotifyListener.start()
    env = subprocess_env({"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "2000000"})
    daemon = DaemonProcess(write_yaml(workdir / "config.yaml", config), workdir, env=env)
    running = LiveDaemon(daemon, port, notify, workdir)
    try:
        assert wait_until(lambda: "READY=1" in "\n".join(notify.texts())
                          or daemon.proc.poll() is not None, 120), daemon.stderr()
        assert daemon.proc.poll() is None, daemon.stderr()
        yield running
    finally:
        running.stop()
        notify.close()


def test_ready_then_progress_based_watchdog(live: LiveDaemon) -> None:
    assert wait_until(lambda: live.notify.texts().count("WATCHDOG=1") >= 2, 30)
    texts = live.notify.texts()
    ready = next(i for i, t in enumerate(texts) if "READY=1" in t)
    first_ping = texts.index("WATCHDOG=1")
    assert ready < first_ping  # never a ping before the model is loaded and a frame read
    stderr = live.daemon.stderr()
    assert stderr.index("worker pid") < stderr.index("INFO daemon.service.monitor: ready")
    status = [t for t in texts if t.startswith("STATUS=cam ")]
    assert status and re.match(r"STATUS=cam \d+\.\d fps \(\d+ dropped\); worker restarts 0",
                               status[-1]), status


def test_healthz_and_prometheus_metrics(live: LiveDaemon) -> None:
    status, ctype, body = live.get("/healthz")
    health = json.loads(body)
    assert status == 200 and ctype == "application/json" and health["status"] == "ok"
    assert health["ready"] and health["worker"]["alive"] and health["cameras"]["cam"]["connected"]
    status, ctype, body = live.get("/metrics")
    assert status == 200 and ctype.startswith("text/plain; version=0.0.4")
    text = body.decode()
    samples = dict(re.findall(r"^(d2stream_\S+) (\S+)$", text, re.MULTILINE))
    assert int(samples['d2stream_frames_processed_total{camera="cam"}']) > 0
    assert float(samples['d2stream_fps{camera="cam"}']) > 0
    for name in ('d2stream_frames_dropped_total{camera="cam"}',
                 'd2stream_queue_depth{camera="cam"}',
                 'd2stream_latency_seconds{camera="cam",quantile="0.95"}',
                 "d2stream_worker_restarts_total"):
        assert name in samples, name
    assert live.get("/nothing")[0] == 404


def read_mjpeg(port: int, count: int) -> list[np.ndarray]:
    """Read ``count`` frames of the MJPEG stream with a plain HTTP client."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/stream/cam.mjpg")
    response = conn.getresponse()
    assert response.status == 200
    ctype = response.getheader("Content-Type")
    match = re.fullmatch(r"multipart/x-mixed-replace; boundary=(\S+)", ctype or "")
    assert match, ctype
    boundary = b"--" + match.group(1).encode()
    frames = []
    while len(frames) < count:
        line = response.fp.readline()
        if line.strip() != boundary:
            continue
        headers = {}
        while (line := response.fp.readline().strip()):
            key, _, value = line.decode().partition(":")
            headers[key.lower()] = value.strip()
        assert headers["content-type"] == "image/jpeg"
        data = response.fp.read(int(headers["content-length"]))
        assert data[:2] == b"\xff\xd8" and data[-2:] == b"\xff\xd9"  # a whole JPEG
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        assert image is not None
        frames.append(image)
    conn.close()
    return frames


def test_mjpeg_stream_serves_valid_jpeg_frames(live: LiveDaemon) -> None:
    frames = read_mjpeg(live.port, 4)
    assert all(f.shape == (240, 320, 3) for f in frames)
    assert any(np.abs(a.astype(int) - b.astype(int)).mean() > 1
               for a, b in zip(frames, frames[1:], strict=False))  # the shapes move
    status, ctype, data = live.get("/snapshot/cam.jpg")
    assert status == 200 and ctype == "image/jpeg"
    assert cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR).shape == (240, 320, 3)


def screenshot(live: LiveDaemon, folder: Path, width: int, height: int) -> np.ndarray:
    """The live-view page as headless Chromium renders it in a ``width x height`` window."""
    chromium = require_program("chromium", "chromium-browser", "google-chrome")
    shot = folder / f"page-{width}x{height}.png"
    proc = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={folder / f'profile-{width}'}",
         f"--window-size={width},{height}", "--hide-scrollbars", f"--screenshot={shot}",
         f"http://127.0.0.1:{live.port}/"],
        capture_output=True, text=True, timeout=120)
    assert shot.is_file(), proc.stderr[-2000:]
    image = cv2.imread(str(shot))
    assert image is not None and image.shape[:2] == (height, width)
    return image


def video_pixels(image: np.ndarray) -> np.ndarray:
    """Where the page shows the camera's scene (its background colour)."""
    background = np.array(ShapeScene(320, 240, seed=SEED).background, np.int32)
    return np.abs(image.astype(np.int32) - background).sum(axis=2) < 45


def test_page_renders_the_stream_in_headless_chromium(live: LiveDaemon, tmp_path: Path) -> None:
    status, ctype, page = live.get("/")
    assert status == 200 and b'src="stream/cam.mjpg"' in page
    image = screenshot(live, tmp_path, 800, 600)
    assert image.std() > 10  # not blank
    assert video_pixels(image).sum() > 0.3 * 320 * 240, "the video frame is not on the page"


@pytest.mark.parametrize(("width", "height"), [(1280, 800), (640, 900)])
def test_page_scales_the_tile_to_the_window(live: LiveDaemon, tmp_path: Path, width: int,
                                            height: int) -> None:
    """A 320x240 camera fills the window (less the header, caption and margins) with its
    aspect kept, whether the window is wide or tall."""
    ys, xs = np.nonzero(video_pixels(screenshot(live, tmp_path, width, height)))
    assert xs.size, "the video frame is not on the page"
    shown_w, shown_h = xs.max() - xs.min() + 1, ys.max() - ys.min() + 1
    fit = min((width - 24) / 320, (height - 34 - 24 - 30) / 240)  # header, padding, caption
    assert shown_w >= 0.9 * 320 * fit and shown_h >= 0.9 * 240 * fit, (shown_w, shown_h, fit)
    assert abs(shown_w / shown_h - 4 / 3) < 0.08, (shown_w, shown_h)


def test_killed_worker_is_restarted_and_processing_goes_on(live: LiveDaemon) -> None:
    before = live.health()
    pid = before["worker"]["pid"]
    os.kill(pid, signal.SIGKILL)
    after = wait_until(lambda: (h := live.health())["worker"]["restarts"] >= 1
                       and h["worker"]["alive"] and h, 120)
    assert after, live.daemon.stderr()
    assert after["worker"]["pid"] != pid
    processed = after["cameras"]["cam"]["processed"]
    assert wait_until(lambda: live.health()["cameras"]["cam"]["processed"] > processed + 2, 60)
    assert live.daemon.proc.poll() is None
    assert f"worker pid {pid} died" in live.daemon.stderr()


def test_sigterm_stops_cleanly_with_a_valid_event_log(live: LiveDaemon) -> None:
    assert live.stop() == 0, live.daemon.stderr()
    assert wait_until(lambda: any(t.startswith("STOPPING=1") for t in live.notify.texts()), 5)
    stderr = live.daemon.stderr()
    assert "received SIGTERM; stopping" in stderr and "Traceback" not in stderr
    events = read_jsonl(live.workdir / "events.jsonl")  # complete lines, all valid JSON
    assert events and all(e["after"]["camera"] == "cam" for e in events)
    stats = live.daemon.stats()
    assert stats["exit_code"] == 0 and stats["cameras"]["cam"]["events"] == len(events)
    assert stats["worker"]["restarts"] == 1
