"""picamera2 source against a stand-in ``picamera2`` module (no Pi camera on CI).

The stand-in reproduces the parts of picamera2's API the source uses: configuration with a
``main`` and a ``lores`` stream, ``capture_request(wait=seconds)`` raising ``TimeoutError``,
``make_array`` (YUV420 lores as a ``(H * 3 / 2, stride)`` array) and ``release``.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from daemon.config import parse_config
from daemon.sources import create_source
from daemon.sources.base import SourceError
from daemon.sources.picamera import model_input_size, yuv420_to_bgr

MAIN_BGR = (30, 60, 200)
LORES_BGR = (200, 100, 40)


def yuv420(width: int, height: int, bgr: tuple[int, int, int], stride: int) -> np.ndarray:
    """A picamera2-like YUV420 buffer: I420 planes whose rows are ``stride`` (Y) and
    ``stride / 2`` (U, V) bytes long, the pixels in the first ``width`` columns."""
    image = np.zeros((height, stride, 3), np.uint8)
    image[:, :width] = bgr
    return cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420)


class FakeRequest:
    def __init__(self, camera: FakePicamera2) -> None:
        self.camera = camera
        self.released = False

    def make_array(self, name: str) -> np.ndarray:
        if self.camera.fail_arrays:
            raise RuntimeError("buffer mapping failed")
        cfg = self.camera.config[name]
        w, h = cfg["size"]
        if name == "main":
            image = np.empty((h, w, 3), np.uint8)
            image[:] = MAIN_BGR
            return image
        return yuv420(w, h, LORES_BGR, stride=w + 64)

    def release(self) -> None:
        self.released = True


class FakePicamera2:
    instances: list[FakePicamera2] = []

    def __init__(self, camera_num: int = 0) -> None:
        self.camera_num = camera_num
        self.config: dict = {}
        self.requests: list[FakeRequest] = []
        self.started = self.closed = False
        self.stall = self.fail_arrays = False
        self.waits: list[float] = []
        FakePicamera2.instances.append(self)

    def create_video_configuration(self, main, lores, buffer_count, controls):  # noqa: ANN001
        return {"main": dict(main), "lores": dict(lores), "buffer_count": buffer_count,
                "controls": controls}

    def configure(self, config: dict) -> None:
        self.config = config

    def camera_configuration(self) -> dict:
        return self.config

    def start(self) -> None:
        self.started = True

    def capture_request(self, wait: float | None = None) -> FakeRequest:
        self.waits.append(wait)
        if self.stall:
            raise TimeoutError
        request = FakeRequest(self)
        self.requests.append(request)
        return request

    def stop(self) -> None:
        self.started = False

    def close(self) -> None:
        self.closed = True


@pytest.fixture()
def fake_picamera2(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[FakePicamera2]]:
    module = types.ModuleType("picamera2")
    module.Picamera2 = FakePicamera2
    monkeypatch.setitem(sys.modules, "picamera2", module)
    FakePicamera2.instances = []
    yield FakePicamera2


def source_for(spec: str, tmp_path: Path):  # noqa: ANN201
    text = f"model: {{path: m.onnx}}\ncameras:\n  - name: pi\n    source: {spec}\n"
    cam = parse_config(text, base_dir=tmp_path, env={}, check_files=False).cameras[0]
    return create_source(cam, model_min_max=(256, 400))


def test_lores_stream_at_the_model_input_size(fake_picamera2, tmp_path: Path) -> None:  # noqa: ANN001
    source = source_for("{type: picamera2, main_size: [1280, 720], fps: 15, "
                        "stall_timeout_s: 2.5}", tmp_path)
    source.open()
    cam = fake_picamera2.instances[-1]
    assert cam.started
    assert cam.config["main"] == {"size": (1280, 720), "format": "RGB888"}
    assert cam.config["lores"] == {"size": model_input_size((1280, 720), 256, 400),
                                   "format": "YUV420"}
    assert cam.config["controls"] == {"FrameRate": 15.0}
    captured = source.read()
    lw, lh = cam.config["lores"]["size"]
    assert captured.image.shape == (lh, lw, 3) and captured.display.shape == (720, 1280, 3)
    assert np.abs(captured.image[lh // 2, lw // 2].astype(int) - LORES_BGR).max() <= 3
    assert tuple(captured.display[0, 0]) == MAIN_BGR
    assert cam.waits == [2.5] and all(r.released for r in cam.requests)
    source.close()
    assert cam.closed and not cam.started


def test_request_released_even_when_conversion_fails(fake_picamera2, tmp_path: Path) -> None:  # noqa: ANN001
    source = source_for("{type: picamera2, lores_size: [320, 240]}", tmp_path)
    source.open()
    cam = fake_picamera2.instances[-1]
    cam.fail_arrays = True
    with pytest.raises(RuntimeError):
        source.read()
    assert cam.requests and cam.requests[-1].released


def test_stalled_capture_is_a_source_error(fake_picamera2, tmp_path: Path) -> None:  # noqa: ANN001
    source = source_for("{type: picamera2, stall_timeout_s: 0.5}", tmp_path)
    source.open()
    fake_picamera2.instances[-1].stall = True
    with pytest.raises(SourceError, match="camera 'pi': capture stalled: no frame within 0.5s"):
        source.read()


def test_missing_picamera2_is_explained(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "picamera2", None)  # import fails
    with pytest.raises(SourceError, match="python3-picamera2"):
        source_for("{type: picamera2}", tmp_path).open()


def test_model_input_size_and_yuv_conversion() -> None:
    assert model_input_size((640, 480), 256, 400) == (342, 256)
    assert model_input_size((1920, 1080), 800, 1333) == (1332, 750)
    buffer = yuv420(64, 48, (10, 200, 90), stride=128)
    bgr = yuv420_to_bgr(buffer, 64)
    assert bgr.shape == (48, 64, 3)
    assert np.abs(bgr.astype(int) - (10, 200, 90)).max() <= 3
