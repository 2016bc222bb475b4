"""``d2stream run`` on a camera folder full of hostile files: every bad one is refused and
counted, the good ones are detected, the run ends normally and memory stays bounded although
one file would decode to 432 MB."""

from __future__ import annotations

from pathlib import Path

import cv2

from daemon.demo.synthetic import ShapeScene
from tests.daemon.daemon_helpers import DaemonProcess, daemon_config, write_yaml
from tests.daemon.sources.hostile_images import write_hostile_images

#: The daemon's own (parent) process (about 100 MB: numpy, OpenCV, Pillow, pydantic). Decoding
#: bad_huge.png (12000 x 12000) would need at least 432 MB more.
PARENT_RSS_BOUND_KB = 300_000


def test_hostile_image_folder(tmp_path: Path, demo_model: Path, demo_video) -> None:  # noqa: ANN001
    folder = tmp_path / "images"
    folder.mkdir()
    scene = ShapeScene(320, 240, seed=5)
    for i in range(4):
        image, _ = scene.render()
        cv2.imwrite(str(folder / f"good_{i}.png"), image)
        for _ in range(5):
            scene.step()
    image, _ = scene.render()
    bad = write_hostile_images(folder, image)
    video, _ = demo_video(4)
    config = daemon_config(demo_model, video, cameras=[{
        "name": "shelf", "source": {"type": "folder", "path": str(folder),
                                    "patterns": ["*.png", "*.jpg"]}}])
    daemon = DaemonProcess(write_yaml(tmp_path / "c.yaml", config), tmp_path)
    assert daemon.wait(300) == 0, daemon.stderr()
    stderr = daemon.stderr()
    assert "Traceback" not in stderr, stderr
    stats = daemon.stats()
    faults = stats["faults"]["cameras"]["shelf"]
    assert faults["frames_rejected"] == len(bad), stderr
    assert faults["rejected_by_reason"] == {"unreadable": 4, "too_large": 1}
    for name in bad:
        assert name in stderr  # each refusal names its file
    assert "bad_huge.png: 12000x12000 exceeds the limit of 33177600 pixels" in stderr
    camera = stats["cameras"]["shelf"]
    assert camera["processed"] == camera["captured"] == 4 + 6  # good_* and the odd formats
    assert stats["worker"]["inferences"] == 10  # the good pictures went through the model
    assert stats["peak_rss_kb"]["daemon"] < PARENT_RSS_BOUND_KB, stats["peak_rss_kb"]
