"""``d2stream predict``: JSON output format, annotated images, and per-file errors."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from tests.conftest import require_fixtures
from tests.daemon.cli.cli_runner import d2stream

DEMO = "mask_rcnn_R_50_FPN_demo"


def _write_inputs(folder: Path) -> dict[str, Path]:
    src = cv2.imread(str(require_fixtures() / DEMO / "image_0.png"))
    folder.mkdir()
    files = {"color": folder / "a_color.png", "gray": folder / "b_gray.png",
             "rgba": folder / "c_rgba.png", "rotated": folder / "d_rotated.jpg",
             "broken": folder / "e_broken.jpg"}
    cv2.imwrite(str(files["color"]), src)
    cv2.imwrite(str(files["gray"]), cv2.cvtColor(src, cv2.COLOR_BGR2GRAY))
    Image.fromarray(cv2.cvtColor(src, cv2.COLOR_BGR2RGBA)).save(files["rgba"])
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    Image.fromarray(src[:, :, ::-1]).save(files["rotated"], exif=exif, quality=95)
    files["broken"].write_bytes(b"\xff\xd8\xff not really a jpeg")
    return files


def test_predict_json_images_and_errors(tmp_path: Path, export_fixture_model) -> None:
    model = export_fixture_model(DEMO)
    files = _write_inputs(tmp_path / "in")
    out_json, out_dir = tmp_path / "p.json", tmp_path / "annotated"
    result = d2stream("predict", model, tmp_path / "in", "--json", out_json,
                      "--output-dir", out_dir)
    assert result.returncode == 1  # the broken file makes the run fail at the end ...
    assert "e_broken.jpg" in result.stderr and "Traceback" not in result.stderr
    doc = json.loads(out_json.read_text())  # ... after every other file was processed
    assert doc["model"]["class_names"] == ["square", "circle", "triangle"]
    by_name = {Path(im["file_name"]).name: im for im in doc["images"]}
    assert sorted(by_name) == ["a_color.png", "b_gray.png", "c_rgba.png", "d_rotated.jpg"]
    color = by_name["a_color.png"]
    assert (color["height"], color["width"]) == (240, 320)
    assert by_name["d_rotated.jpg"]["height"] == 320  # EXIF rotation applied
    inst = color["instances"][0]
    assert set(inst) >= {"box", "score", "category_id", "category_name"}
    assert inst["category_name"] == doc["model"]["class_names"][inst["category_id"]]
    expected = np.load(require_fixtures() / DEMO / "expected_0.npz")
    assert len(color["instances"]) == len(expected["scores"])
    np.testing.assert_allclose(color["instances"][0]["box"], expected["boxes"][0], atol=0.01)
    assert len(by_name["c_rgba.png"]["instances"]) == len(color["instances"])
    assert by_name["b_gray.png"]["instances"], "gray input repeated to 3 channels still detects"
    annotated = cv2.imread(str(out_dir / "a_color.png"))
    assert annotated.shape == (240, 320, 3)
    assert np.abs(annotated.astype(int) - cv2.imread(str(files["color"])).astype(int)).sum() > 0


def test_predict_json_into_a_new_folder(tmp_path: Path, export_fixture_model) -> None:
    """``--json out/detections.json`` creates ``out/`` like ``--output-dir`` does (README)."""
    model = export_fixture_model(DEMO)
    out_json = tmp_path / "out" / "detections.json"
    result = d2stream("predict", model, require_fixtures() / DEMO / "image_1.png",
                      "--json", out_json)
    assert result.returncode == 0, result.stderr
    assert len(json.loads(out_json.read_text())["images"]) == 1
