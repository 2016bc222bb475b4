"""Models written with ONNX external data (weights in ``NAME.onnx.data``): what models over
2 GiB (ViTDet-H, MViTv2-H) need. The limit is lowered here so a small fixture model takes the
same path; real ONNX Runtime sessions on both forms give identical outputs."""

from __future__ import annotations

import json

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest

import export_tools.onnx_io as onnx_io
from d2common.onnx_files import data_file, has_external_data, model_files
from daemon.cli.main import main
from daemon.inference.predictor import Predictor
from export_tools.errors import ExportError
from export_tools.export import export_model
from export_tools.quantize import QuantizeOptions, quantize_model
from export_tools.triton_repository import write_repository
from tests.conftest import manifest, require_fixtures

MODEL = "faster_rcnn_R_50_FPN"


def _export(out, **kw):
    folder = require_fixtures() / MODEL
    return export_model(folder / "config.yaml", folder / "model_final.pth", out,
                        class_names=manifest(MODEL)["thing_classes"], model_name=MODEL, **kw)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """(single-file export, external-data export) of the same fixture model."""
    root = tmp_path_factory.mktemp("extdata")
    return _export(root / "one.onnx"), _export(root / "ext" / "two.onnx", external_data=True)


def _outputs(path, image_input):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: image_input})


def _input():
    return np.load(require_fixtures() / MODEL / "expected_0.npz")["input"][None]


def test_external_data_export_has_a_small_graph_and_the_same_outputs(pair):
    single, external = pair
    assert not has_external_data(single) and has_external_data(external)
    side = data_file(external)
    assert side.name == "two.onnx.data"
    assert side.stat().st_mode & 0o777 == external.stat().st_mode & 0o777  # daemon reads
    assert external.stat().st_size < side.stat().st_size / 20  # the weights left the graph
    graph = onnx.load(str(external), load_external_data=False)
    locations = {e.value for t in graph.graph.initializer for e in t.external_data
                 if e.key == "location"}
    assert locations == {"two.onnx.data"}  # relative: the pair can move together
    for ours, ref in zip(_outputs(external, _input()), _outputs(single, _input()), strict=True):
        np.testing.assert_array_equal(ours, ref)


def test_predictor_reads_metadata_and_predicts_from_external_data(pair, tmp_path):
    single, external = pair
    moved = tmp_path / "moved.onnx"
    onnx_io.copy_model(external, moved)  # the side file keeps the name the graph refers to
    image = cv2.imread(str(require_fixtures() / MODEL / "image_0.png"))
    a, b = Predictor(single), Predictor(moved)
    assert b.metadata.class_names == a.metadata.class_names
    ra, rb = a(image), b(image)
    assert len(ra.scores) > 0
    np.testing.assert_array_equal(rb.pred_boxes, ra.pred_boxes)
    np.testing.assert_array_equal(rb.scores, ra.scores)


def test_automatic_over_the_limit_and_a_stale_side_file_is_removed(pair, tmp_path, monkeypatch):
    single, _ = pair
    model = onnx.load(str(single))
    out = tmp_path / "auto.onnx"
    monkeypatch.setattr(onnx_io, "SINGLE_FILE_LIMIT", onnx_io.weight_bytes(model) - 1)
    assert not onnx_io.check_model(model)  # too large to check in memory: checked once written
    onnx_io.save_model(onnx.load(str(single)), out)
    assert has_external_data(out)
    monkeypatch.setattr(onnx_io, "SINGLE_FILE_LIMIT", 2**31 - 2**26)
    onnx_io.save_model(onnx.load(str(single)), out)  # small again: one file, side file gone
    assert model_files(out) == [out] and not data_file(out).exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left


def test_refusing_external_data_for_a_model_over_the_limit_names_the_file(pair, tmp_path,
                                                                          monkeypatch):
    model = onnx.load(str(pair[0]))
    monkeypatch.setattr(onnx_io, "SINGLE_FILE_LIMIT", 1000)
    with pytest.raises(ExportError, match=r"big\.onnx.*over the 2 GiB limit of one ONNX file"):
        onnx_io.save_model(model, tmp_path / "big.onnx", external_data=False)
    assert not list(tmp_path.iterdir())


def test_cli_flag_writes_external_data(tmp_path):
    folder = require_fixtures() / MODEL
    out = tmp_path / "cli.onnx"
    code = main(["export", "--config-file", str(folder / "config.yaml"), "--weights",
                 str(folder / "model_final.pth"), "-o", str(out), "--external-data"])
    assert code == 0 and has_external_data(out)
    onnx.checker.check_model(str(out), full_check=True)


def test_triton_repository_carries_the_side_file(pair, tmp_path):
    single, external = pair
    folder = write_repository(external, tmp_path / "repo", "frcnn")
    version = folder / "1"
    assert sorted(p.name for p in version.iterdir()) == ["model.onnx", "two.onnx.data"]
    for ours, ref in zip(_outputs(version / "model.onnx", _input()), _outputs(single, _input()),
                         strict=True):
        np.testing.assert_array_equal(ours, ref)


def test_int8_from_an_external_data_model_is_one_file(pair, tmp_path):
    _, external = pair
    out = quantize_model(external, tmp_path / "int8.onnx", require_fixtures() / MODEL,
                         QuantizeOptions(max_images=2))
    assert model_files(out) == [out]  # 4x smaller than float: back under the limit
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert json.loads(meta["d2stream"])["quantization"]["precision"] == "int8"
    assert all(np.isfinite(o).all() for o in _outputs(out, _input()))
