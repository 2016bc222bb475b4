"""The preview window (OpenCV highgui) opens under Xvfb and shows the annotated camera frames."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import numpy as np
from PIL import ImageGrab

from daemon.demo.synthetic import ShapeScene
from tests.daemon.daemon_helpers import (
    DaemonProcess,
    daemon_config,
    free_port,
    looping_camera,
    subprocess_env,
    wait_until,
    write_yaml,
)

SEED = 6
# Deadlines for a loaded 2-core CI machine (load 5-7): each is a condition waited on, so a fast
# machine never waits for it; only a real failure takes this long.
START_S = 180  # worker loaded, camera opened, first frame inferred
PAINT_S = 120  # from the first inferred frame to the window showing it


def background_pixels(display: str, background: np.ndarray, save: Path | None = None) -> int:
    """How many screen pixels have the scene's background colour."""
    grab = ImageGrab.grab(xdisplay=display)
    if save is not None:
        grab.save(save)
    shot = np.asarray(grab.convert("RGB"))[..., ::-1].astype(int)
    return int((np.abs(shot - background).sum(axis=2) < 45).sum())


def screen_shows_frame(display: str, background: np.ndarray) -> bool:
    """True when at least 40% of a 320x240 frame's worth of the scene background is on screen."""
    return background_pixels(display, background) > 0.4 * 320 * 240


def processed_frames(port: int) -> int:
    """Frames of camera ``cam`` the daemon has inferred, from its ``/healthz`` (0 until up)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as reply:
            return int(json.loads(reply.read())["cameras"]["cam"]["processed"])
    except (OSError, ValueError, KeyError):
        return 0


def test_preview_window_opens_under_xvfb(demo_model: Path, demo_video, xvfb_display: str,  # noqa: ANN001
                                        gui_opencv_path: list[str], tmp_path: Path) -> None:
    video, _ = demo_video(20, seed=SEED)
    background = np.array(ShapeScene(320, 240, seed=SEED).background)
    assert not screen_shows_frame(xvfb_display, background)  # nothing on the screen yet
    port = free_port()
    config = daemon_config(demo_model, video, cameras=[looping_camera(video)],
        outputs={"preview": {"enabled": True, "window_title": "d2stream-test"},
                 "http": {"enabled": True, "port": port}},  # /healthz: frames inferred
        draw={"min_score": 0.99})  # few overlays: the scene's background stays visible
    env = subprocess_env({"DISPLAY": xvfb_display}, pythonpath=gui_opencv_path)
    daemon = DaemonProcess(write_yaml(tmp_path / "config.yaml", config), tmp_path, env=env)
    try:
        assert daemon.wait_for_log("preview windows with OpenCV highgui", START_S), \
            daemon.stderr()
        # The window can only show a frame once one was inferred; under load the worker takes
        # a while to load, so wait for that first, then for the window to paint.
        assert wait_until(lambda: processed_frames(port) > 0 or daemon.proc.poll() is not None,
                          START_S) and daemon.proc.poll() is None, daemon.stderr()
        shown = wait_until(lambda: screen_shows_frame(xvfb_display, background), PAINT_S,
                           interval=0.5)
        count = background_pixels(xvfb_display, background, tmp_path / "screen.png")
        assert shown, (f"{count} background pixels on screen, see {tmp_path / 'screen.png'}; "
                       f"daemon log: {daemon.stderr()[-2000:]}")
    finally:
        returncode = daemon.terminate()
    assert returncode == 0, daemon.stderr()
    assert daemon.stats()["cameras"]["cam"]["processed"] > 0
    assert wait_until(lambda: not screen_shows_frame(xvfb_display, background), PAINT_S,
                      interval=0.5)  # the window closed


def test_preview_without_a_gui_build_is_a_config_error(demo_model: Path, demo_video,  # noqa: ANN001
                                                      tmp_path: Path) -> None:
    video, _ = demo_video(20, seed=SEED)
    config = daemon_config(demo_model, video, outputs={"preview": {"enabled": True}})
    env = subprocess_env({"DISPLAY": ":0"})  # the headless OpenCV of the environment
    daemon = DaemonProcess(write_yaml(tmp_path / "config.yaml", config), tmp_path, env=env)
    assert daemon.wait(120) == 78
    errors = [line for line in daemon.stderr().splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1
    assert "outputs.preview.enabled: OpenCV" in errors[0] and "has no GUI" in errors[0]
