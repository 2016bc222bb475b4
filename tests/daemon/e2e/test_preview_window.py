"""The preview window (OpenCV highgui) opens under Xvfb and shows the annotated camera frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import ImageGrab

from daemon.demo.synthetic import ShapeScene
from tests.daemon.daemon_helpers import (
    DaemonProcess,
    daemon_config,
    looping_camera,
    subprocess_env,
    wait_until,
    write_yaml,
)

SEED = 6


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


def test_preview_window_opens_under_xvfb(demo_model: Path, demo_video, xvfb_display: str,  # noqa: ANN001
                                        gui_opencv_path: list[str], tmp_path: Path) -> None:
    video, _ = demo_video(20, seed=SEED)
    background = np.array(ShapeScene(320, 240, seed=SEED).background)
    assert not screen_shows_frame(xvfb_display, background)  # nothing on the screen yet
    config = daemon_config(demo_model, video, cameras=[looping_camera(video)],
        outputs={"preview": {"enabled": True, "window_title": "d2stream-test"}},
        draw={"min_score": 0.99})  # few overlays: the scene's background stays visible
    env = subprocess_env({"DISPLAY": xvfb_display}, pythonpath=gui_opencv_path)
    daemon = DaemonProcess(write_yaml(tmp_path / "config.yaml", config), tmp_path, env=env)
    try:
        assert daemon.wait_for_log("preview windows with OpenCV highgui", 120), daemon.stderr()
        shown = wait_until(lambda: screen_shows_frame(xvfb_display, background), 60)
        count = background_pixels(xvfb_display, background, tmp_path / "screen.png")
        assert shown, (f"{count} background pixels on screen, see {tmp_path / 'screen.png'}; "
                       f"daemon log: {daemon.stderr()[-2000:]}")
    finally:
        returncode = daemon.terminate()
    assert returncode == 0, daemon.stderr()
    assert daemon.stats()["cameras"]["cam"]["processed"] > 0
    assert wait_until(lambda: not screen_shows_frame(xvfb_display, background), 10)  # closed


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
