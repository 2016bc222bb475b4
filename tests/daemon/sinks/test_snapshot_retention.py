"""Event snapshots: the best frame written once per event, and retention by count, age, bytes."""

from __future__ import annotations

import os
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from daemon.config.schema import DrawSection, SnapshotOutput
from daemon.sinks.retention import Retention, prune
from daemon.sinks.snapshots import BOX_COLOR, SnapshotSink
from daemon.structures.frame import Frame
from daemon.structures.metrics import Metrics
from daemon.structures.snapshot import BestShot, SnapshotJob

NOW = 1_800_000_000.0


def make_files(root: Path, spec: dict[str, list[tuple[int, int]]]) -> None:
    """``{camera: [(age seconds, size bytes), ...]}``."""
    for camera, files in spec.items():
        (root / camera).mkdir(parents=True, exist_ok=True)
        for i, (age, size) in enumerate(files):
            path = root / camera / f"e{i}.jpg"
            path.write_bytes(b"x" * size)
            os.utime(path, (NOW - age, NOW - age))


def remaining(root: Path) -> dict[str, list[str]]:
    return {d.name: sorted(p.name for p in d.glob("*.jpg")) for d in sorted(root.iterdir())}


@pytest.mark.parametrize(("policy", "expected"), [
    (Retention(), {"a": ["e0.jpg", "e1.jpg", "e2.jpg"], "b": ["e0.jpg", "e1.jpg"]}),
    (Retention(max_files=2), {"a": ["e1.jpg", "e2.jpg"], "b": ["e0.jpg", "e1.jpg"]}),
    (Retention(max_files=1), {"a": ["e2.jpg"], "b": ["e1.jpg"]}),
    (Retention(max_age_s=250), {"a": ["e1.jpg", "e2.jpg"], "b": ["e1.jpg"]}),
    (Retention(max_bytes=350), {"a": ["e1.jpg", "e2.jpg"], "b": ["e1.jpg"]}),  # oldest first
    (Retention(max_bytes=450), {"a": ["e0.jpg", "e1.jpg", "e2.jpg"], "b": ["e1.jpg"]}),
    (Retention(max_bytes=99), {"a": [], "b": []}),
    (Retention(max_files=2, max_age_s=350, max_bytes=10_000),
     {"a": ["e1.jpg", "e2.jpg"], "b": ["e1.jpg"]}),
])
def test_retention(tmp_path: Path, policy: Retention, expected: dict) -> None:
    # camera a: 300 s, 200 s, 100 s old; camera b: 400 s, 150 s old; 100 bytes each
    make_files(tmp_path, {"a": [(300, 100), (200, 100), (100, 100)],
                          "b": [(400, 100), (150, 100)]})
    (tmp_path / "a" / "notes.txt").write_text("kept")
    prune(tmp_path, policy, now=NOW)
    assert remaining(tmp_path) == expected
    assert (tmp_path / "a" / "notes.txt").exists()


def test_best_frame_is_written_with_its_box_and_pruned(tmp_path: Path) -> None:
    image = np.full((120, 160, 3), 90, np.uint8)
    display = np.full((240, 320, 3), 90, np.uint8)
    frame = Frame("cam", 7, 0.0, time.time(), image, display)
    sink = SnapshotSink(SnapshotOutput(enabled=True, dir=tmp_path, max_files=2), DrawSection(),
                        10, Metrics())
    sink.open()
    jobs = [SnapshotJob(tmp_path / "cam" / f"cam-x-{i}.jpg",
                        BestShot(frame, [40.0, 60.0, 200.0, 180.0], 0.91), "square", f"cam-x-{i}")
            for i in range(3)]
    for age, job in zip((30, 20, 10), jobs, strict=True):
        sink.write(job)
        os.utime(job.path, (time.time() - age,) * 2)
    sink._prune()
    assert sorted(p.name for p in (tmp_path / "cam").iterdir()) == ["cam-x-1.jpg",
                                                                      "cam-x-2.jpg"]
    written = cv2.imread(str(jobs[2].path))
    assert written.shape == (240, 320, 3)  # the display image, not the model's
    assert written[120, 38:43, 2].max() > 180  # the box's left edge (x = 40) in BOX_COLOR
    assert BOX_COLOR[2] > 180 and (np.abs(written[120, 100].astype(int) - 90) < 10).all()
    assert not list((tmp_path / "cam").glob("*.tmp"))

    plain = SnapshotSink(SnapshotOutput(enabled=True, dir=tmp_path / "p", annotate=False),
                         DrawSection(), 10, Metrics())
    plain.open()
    job = SnapshotJob(tmp_path / "p" / "cam" / "e.jpg", jobs[0].best, "square", "e")
    plain.write(job)
    assert np.abs(cv2.imread(str(job.path)).astype(int) - 90).max() < 10  # nothing drawn
