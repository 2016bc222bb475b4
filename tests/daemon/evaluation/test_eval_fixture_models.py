"""``d2stream eval`` on shapes_val for every fixture model: AP equal to Detectron2's within 0.1."""

from __future__ import annotations

import json

import pytest

from daemon.cli.main import main
from tests.daemon.evaluation.conftest import fixtures_path

AP_TOLERANCE = 0.1


def _reference() -> dict:
    return json.loads((fixtures_path() / "shapes_val" / "detectron2_ap.json").read_text())


def _params() -> list[str]:
    return sorted(_reference()["models"])


@pytest.mark.parametrize("model", _params())
def test_ap_matches_detectron2(model, exported_model, shapes_val, tmp_path, capsys):
    expected = _reference()["models"][model]
    onnx_path = exported_model(model)
    report_path = tmp_path / "report.json"
    results_path = tmp_path / "results.json"
    rc = main(["eval", str(onnx_path), "--coco-json",
               str(shapes_val / "annotations.json"), "--images", str(shapes_val / "images"),
               "--report", str(report_path), "--coco-results", str(results_path),
               "--no-progress"])
    assert rc == 0
    report = json.loads(report_path.read_text())
    assert "AP50" in capsys.readouterr().out
    tasks = [t for t in ("bbox", "segm") if t in expected]
    assert [t for t in ("bbox", "segm") if t in report] == tasks
    diffs = {f"{t}/{m}": report[t][m] - expected[t][m] for t in tasks for m in expected[t]}
    detail = (f"{model}: ours {report['num_detections']} detections vs Detectron2 "
              f"{expected['num_detections']}; AP differences {diffs}")
    assert all(abs(d) <= AP_TOLERANCE for d in diffs.values()), detail
    results = json.loads(results_path.read_text())
    assert len(results) == report["num_detections"]
    assert {r["category_id"] for r in results} <= {1, 2, 3}
