"""``d2stream predict`` on hostile folders: a degenerate image and a FIFO (issue 19)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
from PIL import Image

from d2common.image_io import list_images
from daemon.config.schema import FolderSourceConfig
from daemon.sources.folder import FolderSource
from tests.conftest import require_fixtures
from tests.daemon.cli.cli_runner import d2stream

DEMO = "mask_rcnn_R_50_FPN_demo"


def _hostile_folder(folder: Path) -> None:
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), cv2.imread(str(require_fixtures() / DEMO / "image_0.png")))
    os.mkfifo(folder / "b.png")  # opening it for reading would block forever
    Image.new("RGB", (3000, 1), (120, 30, 200)).save(folder / "c_thin.png")
    cv2.imwrite(str(folder / "d.png"), cv2.imread(str(require_fixtures() / DEMO / "image_1.png")))


def test_degenerate_image_and_fifo_fail_alone(tmp_path: Path, export_fixture_model) -> None:
    model = export_fixture_model(DEMO)
    _hostile_folder(tmp_path / "in")
    out_json = tmp_path / "p.json"
    result = d2stream("predict", model, tmp_path / "in", "--json", out_json, timeout=240)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    thin = [line for line in result.stderr.splitlines() if "c_thin.png" in line]
    assert len(thin) == 1 and "3000x1 image is too narrow" in thin[0], result.stderr
    assert any("b.png: not a regular file" in line for line in result.stderr.splitlines())
    names = [Path(im["file_name"]).name for im in json.loads(out_json.read_text())["images"]]
    assert names == ["a.png", "d.png"]


def test_predict_and_the_folder_camera_list_the_same_files(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    _hostile_folder(folder)
    (folder / "notes.txt").write_text("not an image")
    camera = FolderSource("cam", FolderSourceConfig(type="folder", path=folder))
    camera.open()
    try:
        assert camera._files == list_images([str(folder)])
        assert [p.name for p in camera._files] == ["a.png", "c_thin.png", "d.png"]
    finally:
        camera.close()
