"""Backend selection and parity of every installed backend with Detectron2's own outputs."""

from __future__ import annotations

import numpy as np
import pytest

from d2common.errors import ModelError
from daemon.inference.backends import (
    BACKENDS,
    BackendOptions,
    auto,
    available_backends,
    create_backend,
)
from daemon.inference.backends.ort_backend import cache_file
from daemon.inference.predictor import Predictor

PARITY_MODELS = ("faster_rcnn_R_50_FPN", "mask_rcnn_R_50_FPN", "faster_rcnn_X_FPN_gn_rgb",
                 "mask_rcnn_R_50_C4")
BOX_TOL, SCORE_TOL, MASK_TOL = 1e-3, 1e-4, 1e-3


def _backend_params():
    params = []
    for name, (_, package) in BACKENDS.items():
        if package is None:  # no local engine (remote: tests/daemon/backends/test_remote_backend)
            continue
        mark = [] if name in available_backends() else [pytest.mark.skip(
            reason=f"{package} not installed (pip install 'd2stream[{name}]')")]
        params.append(pytest.param(name, marks=mark, id=name))
    return params


def test_onnxruntime_is_always_available():
    assert "onnxruntime" in available_backends()


def test_every_backend_auto_can_pick_runs_the_parity_tests():
    """``auto`` chooses among installed registry backends only, and each of those is a
    non-skipped parameter of the parity tests below."""
    tested = {p.values[0] for p in _backend_params() if not p.marks}
    assert set(auto.candidates()) <= tested
    assert set(auto.candidates()) == set(available_backends()) & tested


def test_unknown_backend_names_the_choices(exported):
    with pytest.raises(ModelError, match="unknown inference backend 'tensorrt'.*onnxruntime"):
        create_backend("tensorrt", exported("faster_rcnn_R_50_FPN"))


def test_missing_model_file_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        Predictor(tmp_path / "nope.onnx")


@pytest.mark.parametrize("backend", _backend_params())
@pytest.mark.parametrize("model", PARITY_MODELS)
def test_backend_matches_detectron2(backend, model, exported, fixtures):
    """Raw network outputs on Detectron2's own network inputs equal its raw results."""
    pred = Predictor(exported(model), backend=backend)
    assert pred.backend.name == backend
    for i in range(5):
        expected = np.load(fixtures / model / f"expected_{i}.npz")
        raw = pred.run_network(expected["input"][None])
        n = len(expected["raw_scores"])
        assert len(raw["scores"]) == n, f"{model} image {i}: {len(raw['scores'])} vs {n}"
        if n == 0:
            continue
        order = _match(raw, expected)
        np.testing.assert_allclose(raw["boxes"][order], expected["raw_boxes"], atol=BOX_TOL)
        np.testing.assert_allclose(raw["scores"][order], expected["raw_scores"], atol=SCORE_TOL)
        np.testing.assert_array_equal(raw["classes"][order], expected["raw_classes"])
        if "raw_masks" in expected:
            np.testing.assert_allclose(raw["mask_probs"][order], expected["raw_masks"][:, 0],
                                       atol=MASK_TOL)


def _match(raw: dict, expected) -> np.ndarray:
    """For each expected instance, the predicted one of the same class with the nearest box."""
    order = []
    for box, cls in zip(expected["raw_boxes"], expected["raw_classes"]):
        dist = np.abs(raw["boxes"] - box).max(axis=1) + 1e9 * (raw["classes"] != cls)
        order.append(int(np.argmin(dist)))
    return np.asarray(order)


@pytest.mark.parametrize("backend", [*_backend_params(), pytest.param("auto", id="auto")])
def test_predictor_end_to_end_with_threads(backend, exported, fixtures):
    import cv2

    pred = Predictor(exported("mask_rcnn_R_50_FPN_demo"), num_threads=1, backend=backend)
    assert pred.backend.name == backend or backend == "auto" and pred.backend.name in BACKENDS
    image = cv2.imread(str(fixtures / "mask_rcnn_R_50_FPN_demo" / "image_0.png"))
    inst = pred(image)
    expected = np.load(fixtures / "mask_rcnn_R_50_FPN_demo" / "expected_0.npz")
    assert len(inst) == len(expected["scores"])
    np.testing.assert_allclose(np.sort(inst.scores), np.sort(expected["scores"]), atol=SCORE_TOL)
    assert inst.pred_masks.shape == expected["masks"].shape


def test_openvino_missing_package_message(monkeypatch, exported):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "openvino" else real(name, *a))
    assert "openvino" not in available_backends()
    with pytest.raises(ModelError, match=r"pip install 'd2stream\[openvino\]'"):
        create_backend("openvino", exported("faster_rcnn_R_50_FPN"))


def test_ort_optimized_graph_cache(exported, fixtures, tmp_path):
    """First load writes the optimised graph; the second loads it and gives the same outputs."""
    model = exported("faster_rcnn_R_50_FPN")
    options = BackendOptions(num_threads=1, optimized_cache=str(tmp_path / "cache"))
    x = np.load(fixtures / "faster_rcnn_R_50_FPN" / "expected_0.npz")["input"][None]
    first = create_backend("onnxruntime", model, options)
    cached = cache_file(model, tmp_path / "cache")
    assert cached.is_file() and cached.stat().st_size > 0
    stamp = cached.stat().st_mtime_ns
    second = create_backend("onnxruntime", model, options)
    assert cached.stat().st_mtime_ns == stamp  # read, not rewritten
    a, b = first.run({"image": x}), second.run({"image": x})
    for key in a:
        np.testing.assert_allclose(a[key], b[key], atol=1e-5)
    assert second.metadata_props == first.metadata_props


def test_corrupt_cache_falls_back_and_is_removed(exported, tmp_path):
    model = exported("faster_rcnn_R_50_FPN")
    cached = cache_file(model, tmp_path)
    cached.write_bytes(b"not an onnx model")
    backend = create_backend("onnxruntime", model, BackendOptions(optimized_cache=str(tmp_path)))
    assert backend.output_names[:3] == ["boxes", "scores", "classes"]
    assert not cached.exists()
