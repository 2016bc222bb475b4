"""``d2stream export`` on LazyConfig files: the dumped config.yaml and the .py config both export;
a hostile or unsupported file fails with one line naming the tag or target and its key path."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import onnx

from tests.conftest import require_fixtures
from tests.daemon.cli.cli_runner import d2stream

R50 = "mask_rcnn_R_50_FPN_100ep_LSJ"
LSJ_PY = (Path(__file__).resolve().parents[2] / "export_tools" / "lazy" / "configs" /
          "new_baselines" / "tiny_mask_rcnn_LSJ.py")


def _copy_fixture(tmp_path: Path) -> Path:
    folder = tmp_path / R50
    shutil.copytree(require_fixtures() / "lazy" / R50, folder)
    for f in folder.iterdir():
        f.chmod(0o644)
    return folder


def _clean_failure(result, *needles: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr


def test_export_dumped_yaml_and_py_config(tmp_path: Path) -> None:
    weights = require_fixtures() / "lazy" / R50 / "model_final.pth"
    for config in (require_fixtures() / "lazy" / R50 / "config.yaml", LSJ_PY):
        out = tmp_path / f"{config.stem}.onnx"
        result = d2stream("export", "--config-file", config, "--weights", weights, "-o", out,
                          "--classes", "square,circle,triangle")
        assert result.returncode == 0, result.stderr
        meta = json.loads({p.key: p.value for p in onnx.load(str(out)).metadata_props}["d2stream"])
        assert (meta["min_size_test"], meta["max_size_test"]) == (512, 512)
        assert meta["class_names"] == ["square", "circle", "triangle"]


def test_eval_tag_in_config_yaml_is_refused(tmp_path: Path) -> None:
    folder = _copy_fixture(tmp_path)
    cfg = folder / "config.yaml"
    cfg.write_text(cfg.read_text().replace(
        "aspect_ratios: [0.5, 1.0, 2.0]",
        "aspect_ratios: !!python/object/apply:eval ['[0.5, 1.0, 2.0]']"))
    result = d2stream("export", "--config-file", cfg, "--weights", folder / "model_final.pth",
                      "-o", tmp_path / "m.onnx")
    _clean_failure(result, "!!python/object/apply:eval",
                   "model.proposal_generator.anchor_generator.aspect_ratios")
    assert not (tmp_path / "m.onnx").exists()


def test_unknown_target_is_refused(tmp_path: Path) -> None:
    folder = _copy_fixture(tmp_path)
    cfg = folder / "config.yaml"
    cfg.write_text(cfg.read_text().replace("detectron2.modeling.roi_heads.FastRCNNConvFCHead",
                                           "my_lab.heads.FancyHead"))
    result = d2stream("export", "--config-file", cfg, "--weights", folder / "model_final.pth",
                      "-o", tmp_path / "m.onnx")
    _clean_failure(result, "my_lab.heads.FancyHead", "model.roi_heads.box_head._target_")


def test_pickle_config_is_never_read(tmp_path: Path) -> None:
    folder = _copy_fixture(tmp_path)
    (folder / "config.yaml.pkl").write_bytes(b"\x80\x04not a config")
    result = d2stream("export", "--config-file", folder / "config.yaml.pkl", "--weights",
                      folder / "model_final.pth", "-o", tmp_path / "m.onnx")
    _clean_failure(result, "never read")
