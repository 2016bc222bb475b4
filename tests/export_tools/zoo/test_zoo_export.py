"""From a zoo name to a running model: CLI download/export, zoo:NAME in a daemon config."""

from __future__ import annotations

import cv2
import pytest

from d2common.errors import ModelError
from d2common.zoo_names import zoo_onnx_path
from daemon.cli.main import main
from daemon.evaluation.parity import compare_image
from daemon.inference.predictor import Predictor
from daemon.zoo_cache import resolve_model
from tests.daemon.evaluation.conftest import load_expected


def _assert_matches_detectron2(onnx_path, fixture):
    pred = Predictor(onnx_path).predict_compact(cv2.imread(str(fixture / "image_0.png")))
    res = compare_image("image_0.png", load_expected(fixture / "expected_0.npz"),
                        pred.to_instances())
    assert res.passed, res.failures


def test_export_model_zoo_cli_downloads_and_exports(mirror, tmp_path, capsys):
    out = tmp_path / "m.onnx"
    assert main(["export", "--model-zoo", mirror.entry, "-o", str(out)]) == 0
    assert [p for p, _ in mirror.server.script.requests] == [mirror.weights_url_path]
    _assert_matches_detectron2(out, mirror.fixture)
    cached = list((mirror.cache / "weights").rglob("*.pkl"))
    assert len(cached) == 1 and cached[0].with_name("config.yaml").is_file()
    # Offline, a second export reuses the cached weights.
    assert main(["zoo", "export", mirror.entry, "--offline", "-o", str(tmp_path / "2.onnx")]) == 0
    assert len(mirror.server.script.requests) == 1
    assert capsys.readouterr().out.strip().endswith("2.onnx")


def test_daemon_config_zoo_reference_exports_once_then_uses_cache(mirror, monkeypatch):
    path = resolve_model(f"zoo:{mirror.entry}")
    assert path == zoo_onnx_path(mirror.entry, mirror.cache) and path.is_file()
    _assert_matches_detectron2(path, mirror.fixture)
    mtime = path.stat().st_mtime_ns
    monkeypatch.setenv("D2STREAM_OFFLINE", "1")
    assert resolve_model(f"zoo:{mirror.entry}") == path
    assert path.stat().st_mtime_ns == mtime and len(mirror.server.script.requests) == 1


def test_daemon_zoo_reference_offline_without_cache_fails_clearly(mirror, monkeypatch):
    monkeypatch.setenv("D2STREAM_OFFLINE", "1")
    with pytest.raises(Exception, match="not in the cache .*offline mode") as err:
        resolve_model(f"zoo:{mirror.entry}")
    assert "\n" not in str(err.value) and mirror.server.script.requests == []


def test_daemon_zoo_reference_without_export_tools_says_what_to_do(mirror, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_export_tools(name, *args, **kwargs):
        if name.startswith("export_tools"):
            raise ModuleNotFoundError("No module named 'export_tools'", name="export_tools")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_export_tools)
    with pytest.raises(ModelError, match="d2stream zoo export fixture/faster_rcnn_R_50_FPN"):
        resolve_model(f"zoo:{mirror.entry}")


def test_plain_paths_pass_through(tmp_path):
    assert resolve_model(str(tmp_path / "m.onnx")) == tmp_path / "m.onnx"


def _errors(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]


def test_zoo_cli_bad_checksum_on_official_name(mirror, tmp_path, caplog):
    # A mirror that serves the wrong file under an official name: the MD5 prefix check catches it.
    name = "COCO-Detection/faster_rcnn_R_50_FPN_3x"
    target = mirror.server.root / name / "137849458" / "model_final_280758.pkl"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"not the model" * 1000)
    assert main(["zoo", "download", name, "--no-progress"]) == 1
    (err,) = _errors(caplog)
    assert "expected it to start with 280758" in err and "\n" not in err
    assert not list((mirror.cache / "weights").rglob("model_final_280758.pkl*"))


def test_zoo_cli_offline_without_cache(mirror, caplog):
    assert main(["zoo", "download", "COCO-Detection/retinanet_R_50_FPN_3x", "--offline"]) == 1
    (err,) = _errors(caplog)
    assert "offline mode is on" in err and "retinanet_R_50_FPN_3x" in err and "\n" not in err
    assert mirror.server.script.requests == []


def test_zoo_cli_list_and_show(capsys):
    assert main(["zoo", "list", "keypoint"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed and all("keypoint" in line for line in listed)
    assert main(["zoo", "show", "COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x"]) == 0
    out = capsys.readouterr().out
    assert "137849600/model_final_f10217.pkl" in out and "md5 prefix f10217" in out
    assert "MASK_ON: true" in out


def test_unknown_zoo_name_in_export(caplog, tmp_path):
    assert main(["export", "--model-zoo", "mask_rcnn_R_50_FPN_3x", "-o", str(tmp_path / "x")]) == 2
    (err,) = _errors(caplog)
    assert "did you mean COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x" in err
