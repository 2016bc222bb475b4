"""The frame-difference motion detector on rendered scenes (sensor noise, JPEG, shapes)."""

from __future__ import annotations

import cv2
import numpy as np

from daemon.config.events_schema import MotionSection
from daemon.demo.synthetic import Shape, ShapeScene
from daemon.motion.detector import MotionDetector

RED = (40, 40, 200)


def jpeg(image: np.ndarray) -> np.ndarray:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
    assert ok
    return cv2.imdecode(data, cv2.IMREAD_COLOR)


def frames(positions: list[float | None], seed: int = 0) -> list[np.ndarray]:
    """One frame per entry: a triangle at that x (``None``: empty scene), noise, JPEG."""
    scene = ShapeScene(320, 240, n_shapes=0, seed=seed)
    out = []
    for x in positions:
        scene.shapes = [] if x is None else [Shape(2, x, 120, 60, 0.0, RED, 0, 0, 0)]
        out.append(jpeg(scene.render()[0]))
    return out


def test_sensor_noise_and_compression_are_not_motion() -> None:
    detector = MotionDetector(MotionSection())
    results = [detector.detect(f) for f in frames([None] * 30)]
    assert not any(r.motion for r in results)
    assert max(r.score for r in results) < MotionSection().min_area


def test_a_moving_shape_is_motion_and_a_stopped_one_fades_into_the_background() -> None:
    detector = MotionDetector(MotionSection())
    path = [None] * 5 + [60 + 10 * i for i in range(10)] + [150] * 40
    results = [detector.detect(f) for f in frames(path)]
    assert not results[0].motion  # the first frame only sets the background
    assert all(r.motion for r in results[5:15])
    assert 0.01 < results[10].score < 0.2  # about the area the shape swept
    assert not any(r.motion for r in results[-10:])  # learnt after standing still


def test_a_sudden_change_of_the_whole_image_relearns_the_background() -> None:
    detector = MotionDetector(MotionSection())
    dark, bright = np.full((240, 320, 3), 40, np.uint8), np.full((240, 320, 3), 200, np.uint8)
    detector.detect(dark)
    switched = detector.detect(bright)
    assert switched.motion and switched.reset and switched.score > 0.9
    assert not detector.detect(bright).motion  # learnt at once, not over many frames


def test_the_grey_image_is_downscaled_with_its_aspect() -> None:
    detector = MotionDetector(MotionSection(width=160, blur_size=1))
    assert detector.small_grey(np.zeros((480, 640, 3), np.uint8)).shape == (120, 160)
    assert detector.small_grey(np.zeros((100, 120, 3), np.uint8)).shape == (100, 120)  # smaller
    assert detector.small_grey(np.zeros((90, 160), np.uint8)).shape == (90, 160)  # grey input


def test_min_area_sets_the_sensitivity() -> None:
    path = [None] * 3 + [100, 104]  # a small step of a shape that appeared two frames before
    small = [MotionDetector(MotionSection(min_area=0.5)).detect(f) for f in frames(path)]
    assert not any(r.motion for r in small)
