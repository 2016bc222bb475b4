"""Unusable frames and image files: refused one by one with a reason, everything else goes on."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from daemon.config.schema import CameraSection
from daemon.demo.synthetic import ShapeScene
from daemon.pipeline.frame_queue import FrameHub
from daemon.pipeline.producer import Producer
from daemon.sources import create_source
from daemon.sources.frames import FrameRejected, usable_frame
from daemon.structures.metrics import Metrics
from tests.daemon.sources.hostile_images import write_hostile_images


def test_usable_formats_become_contiguous_bgr() -> None:
    bgr = np.random.default_rng(0).integers(0, 255, (6, 8, 3), dtype=np.uint8)
    assert usable_frame(bgr) is not None and usable_frame(bgr).shape == (6, 8, 3)
    gray = bgr[:, :, 0]
    for image in (gray, gray[:, :, None]):
        out = usable_frame(image)
        assert out.shape == (6, 8, 3) and (out == gray[:, :, None]).all()
    bgra = np.dstack([bgr, np.full((6, 8), 7, np.uint8)])
    assert (usable_frame(bgra) == bgr).all()
    wide = bgr.astype(np.uint16) * 257
    assert (usable_frame(wide) == bgr).all()
    assert (usable_frame(np.ones((2, 2), bool)) == 255).all()
    strided = bgr[:, ::2]
    out = usable_frame(strided)
    assert out.flags.c_contiguous and (out == strided).all()


@pytest.mark.parametrize(("image", "reason"), [
    (None, "unreadable"),
    (b"jpeg bytes", "unreadable"),
    (np.zeros((0, 10, 3), np.uint8), "empty"),
    (np.zeros((10, 0), np.uint8), "empty"),
    (np.zeros((10, 10, 0), np.uint8), "empty"),
    (np.zeros((4, 4, 2), np.uint8), "channels"),
    (np.zeros((4, 4, 5), np.uint8), "channels"),
    (np.zeros((2, 4, 4, 3), np.uint8), "channels"),
    (np.zeros(12, np.uint8), "channels"),
    (np.zeros((4, 4, 3), np.float32), "dtype"),
    (np.zeros((4, 4, 3), np.int8), "dtype"),
    (np.zeros((4, 4, 3), np.complex64), "dtype"),
])
def test_unusable_frames_are_refused_with_a_reason(image: object, reason: str) -> None:
    with pytest.raises(FrameRejected) as err:
        usable_frame(image)
    assert err.value.reason == reason and str(err.value)


def test_pixel_limit_is_checked_before_any_conversion() -> None:
    # A broadcast view: 40000 x 40000 x 3 "pixels" in 3 bytes of memory. Converting it would
    # allocate 4.8 GB; the limit refuses it first.
    huge = np.broadcast_to(np.zeros((1, 1, 3), np.uint16), (40_000, 40_000, 3))
    with pytest.raises(FrameRejected, match=r"40000x40000 image exceeds the limit of 1000000"):
        usable_frame(huge, max_pixels=1_000_000)
    assert usable_frame(np.zeros((1000, 1000, 3), np.uint8), max_pixels=1_000_000).size


def test_folder_of_hostile_files_is_read_past_every_bad_one(tmp_path: Path) -> None:
    good, _ = ShapeScene(64, 48, seed=1).render()
    folder = tmp_path / "images"
    bad = write_hostile_images(folder, good)
    camera = CameraSection.model_validate(
        {"name": "shelf", "source": {"type": "folder", "path": str(folder),
                                     "patterns": ["*.png", "*.jpg"]},
         "max_pixels": 100_000_000})
    hub, metrics, stop = FrameHub(), Metrics(), threading.Event()
    hub.add("shelf", 100, lossless=True)
    metrics.add_camera("shelf")
    producer = Producer(create_source(camera), camera.reopen, hub, metrics, stop,
                        max_pixels=camera.max_pixels)
    producer.start()
    producer.join(120)
    assert not producer.is_alive()
    frames = [f for f in iter(lambda: hub.take(timeout=0.01), None)]
    accepted = sorted(p.name for p in folder.iterdir() if p.name.startswith("ok_"))
    assert len(frames) == len(accepted) == 6
    for frame in frames:
        assert frame.image.dtype == np.uint8 and frame.image.shape == (48, 64, 3)
    faults = metrics.snapshot()["faults"]["cameras"]["shelf"]
    assert faults["frames_rejected"] == len(bad)
    expected: dict[str, int] = {}
    for reason in bad.values():
        expected[reason] = expected.get(reason, 0) + 1
    assert faults["rejected_by_reason"] == expected


def test_pixel_limit_of_a_folder_camera_uses_the_header(tmp_path: Path) -> None:
    good, _ = ShapeScene(64, 48, seed=1).render()
    folder = tmp_path / "images"
    write_hostile_images(folder, good)
    camera = CameraSection.model_validate(
        {"name": "shelf", "source": {"type": "folder", "path": str(folder),
                                     "patterns": ["bad_huge.png", "ok_rgba.png"]}})
    source = create_source(camera)  # default limit: 7680 x 4320
    refused: list[FrameRejected] = []
    source.on_rejected = refused.append
    source.open()
    assert source.read() is not None  # ok_rgba.png, after bad_huge.png was refused
    assert [r.reason for r in refused] == ["too_large"]
    assert "12000x12000 exceeds the limit of 33177600 pixels" in str(refused[0])
