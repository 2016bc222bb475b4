"""Fixtures of the camera-daemon tests: the demo model, demo videos, a real MQTT broker, Xvfb.

System programs (mosquitto, Xvfb, chromium, systemd-analyze) come from ``.ci/system-deps.sh``;
a missing one fails the test that needs it with that hint, it is never skipped.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from daemon.demo.synthetic import GroundTruth, write_demo_video
from tests.conftest import require_fixtures
from tests.daemon.daemon_helpers import (
    free_port,
    require_program,
    start_mosquitto,
    stop_process,
)

DEMO_MODEL = "mask_rcnn_R_50_FPN_demo"


@pytest.fixture(scope="session")
def demo_model(export_fixture_model: Callable[..., Path]) -> Path:
    """The confident demo Mask R-CNN exported once per session (classes square/circle/triangle)."""
    require_fixtures()
    return export_fixture_model(DEMO_MODEL)


VideoFactory = Callable[..., tuple[Path, list[list[GroundTruth]]]]


@pytest.fixture(scope="session")
def demo_video(tmp_path_factory: pytest.TempPathFactory) -> VideoFactory:
    """``demo_video(frames, seed=0, size=(320, 240), fps=10)`` -> (video path, ground truth)."""
    folder = tmp_path_factory.mktemp("videos")
    cache: dict[tuple, tuple[Path, list[list[GroundTruth]]]] = {}

    def make(frames: int, seed: int = 0, size: tuple[int, int] = (320, 240),
             fps: float = 10.0) -> tuple[Path, list[list[GroundTruth]]]:
        key = (frames, seed, size, fps)
        if key not in cache:
            path = folder / f"shapes-{frames}-{seed}-{size[0]}x{size[1]}-{fps:g}.avi"
            cache[key] = (path, write_demo_video(path, frames, size, fps, seed))
        return cache[key]

    return make


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """A real mosquitto broker on a free loopback port, shared by the session: ``(host, port)``."""
    port = free_port()
    proc = start_mosquitto(tmp_path_factory.mktemp("mosquitto"), port)
    yield "127.0.0.1", port
    stop_process(proc)


@pytest.fixture(scope="session")
def xvfb_display() -> Iterator[str]:
    """A private Xvfb server: its ``DISPLAY`` value.

    Xvfb picks a free display number itself (``-displayfd``) and reports it once it accepts
    connections, so test sessions running side by side never share or steal a display.
    ``-noreset`` keeps it from resetting when the last client (a screenshot) disconnects.
    """
    binary = require_program("Xvfb")
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen([binary, "-displayfd", str(write_fd), "-screen", "0", "1024x768x24",
                             "-nolisten", "tcp", "-noreset"], pass_fds=(write_fd,),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        number = pipe.readline().strip()  # empty when Xvfb exits without a display
    if not number.isdigit() or proc.poll() is not None:
        pytest.fail("Xvfb did not start", pytrace=False)
    yield f":{number}"
    proc.terminate()
    proc.wait(10)


def _has_gui(pythonpath: list[str]) -> bool:
    code = ("import cv2, sys; info = cv2.getBuildInformation(); "
            "sys.exit(0 if any(l.strip().startswith('GUI:') and 'NONE' not in l "
            "for l in info.splitlines()) else 1)")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(pythonpath))
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          timeout=60).returncode == 0


@pytest.fixture(scope="session")
def gui_opencv_path() -> list[str]:
    """``PYTHONPATH`` entries that give the child an OpenCV with highgui ([] if it has one)."""
    if _has_gui([]):
        return []
    candidates = [os.environ.get("D2STREAM_GUI_OPENCV", ""), str(Path(sys.prefix) / "opencv-gui")]
    for candidate in filter(None, candidates):
        if (Path(candidate) / "cv2").is_dir() and _has_gui([candidate]):
            return [candidate]
    pytest.fail("no OpenCV with highgui for the preview test: run "
                f"'bash .ci/preview-opencv.sh {sys.executable}' (installs opencv-python into "
                f"{Path(sys.prefix) / 'opencv-gui'}, outside site-packages)", pytrace=False)
