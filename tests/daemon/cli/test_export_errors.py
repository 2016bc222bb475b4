"""``d2stream export`` on bad input: one clear line naming the problem, no traceback."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import pytest

from tests.conftest import require_fixtures
from tests.daemon.cli.cli_runner import d2stream

FRCNN = "faster_rcnn_R_50_FPN"


def _assert_clean_failure(result, *needles: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr


class _Payload:
    """Pickles into a call of os.system that would create a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_and_nothing_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps({"model": {"x": _Payload(marker)}}))
    cfg = require_fixtures() / FRCNN / "config.yaml"
    result = d2stream("export", "--config-file", cfg, "--weights", evil, "-o", tmp_path / "m.onnx")
    _assert_clean_failure(result, "evil.pkl", "system")
    assert not marker.exists()
    assert not (tmp_path / "m.onnx").exists()


def test_truncated_checkpoint(tmp_path: Path) -> None:
    src = require_fixtures() / FRCNN / "model_final.pth"
    cut = tmp_path / "cut.pth"
    cut.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    result = d2stream("export", "--config-file", src.with_name("config.yaml"), "--weights", cut,
                      "-o", tmp_path / "m.onnx")
    _assert_clean_failure(result, "cut.pth")


def test_checkpoint_of_another_architecture_lists_the_keys(tmp_path: Path) -> None:
    root = require_fixtures()
    result = d2stream("export", "--config-file", root / FRCNN / "config.yaml", "--weights",
                      root / "mask_rcnn_R_50_C4" / "model_final.pth", "-o", tmp_path / "m.onnx")
    _assert_clean_failure(result, "does not match", "missing", "unexpected", "wrong shape",
                          "backbone.bottom_up.stem.conv1.weight")


def test_unknown_meta_architecture_names_the_key(tmp_path: Path) -> None:
    root = require_fixtures() / FRCNN
    result = d2stream("export", "--config-file", root / "config.yaml", "--weights",
                      root / "model_final.pth", "-o", tmp_path / "m.onnx",
                      "--opts", "MODEL.META_ARCHITECTURE", "MyCustomSegmentor")
    _assert_clean_failure(result, "MODEL.META_ARCHITECTURE", "GeneralizedRCNN")


def test_wrong_class_count(tmp_path: Path) -> None:
    root = require_fixtures() / FRCNN
    result = d2stream("export", "--config-file", root / "config.yaml", "--weights",
                      root / "model_final.pth", "-o", tmp_path / "m.onnx", "--classes", "a,b")
    _assert_clean_failure(result, "--classes", "3 classes")


@pytest.mark.parametrize("weights", ["model_final.pth", "model_final.pkl"])
def test_export_from_a_copied_training_folder(tmp_path: Path, weights: str) -> None:
    """A training run's folder moved elsewhere: config.yaml and the checkpoint beside it."""
    src = require_fixtures() / FRCNN
    for name in ("config.yaml", weights):
        shutil.copy(src / name, tmp_path / name)
    result = d2stream("export", "--config-file", tmp_path / "config.yaml", "--weights",
                      tmp_path / weights, "-o", tmp_path / "out" / "m.onnx")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "m.onnx").stat().st_size > 100_000
