"""Full-width models of zoo architectures with synthetic weights (the benchmarks' models)."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from export_tools.perf.random_weights import (
    BACKGROUND_BIAS,
    RESIDUAL_GAMMA,
    SyntheticWeights,
    build_random_model,
    synthesise,
    zoo_config,
)


def test_synthesised_values_follow_the_rules():
    conv = synthesise("backbone.bottom_up.res3.0.conv2.weight", (128, 128, 3, 3))
    assert conv.dtype == np.float32 and conv.shape == (128, 128, 3, 3)
    assert conv.std() == pytest.approx(np.sqrt(2 / (128 * 9)), rel=0.05)  # He-normal
    again = synthesise("backbone.bottom_up.res3.0.conv2.weight", (128, 128, 3, 3))
    np.testing.assert_array_equal(conv, again)  # deterministic by name
    assert synthesise("proposal_generator.rpn_head.conv.weight", (256, 256, 3, 3)).std() == \
        pytest.approx(0.01, rel=0.05)
    gamma = synthesise("backbone.bottom_up.res3.0.conv3.norm.weight", (512,))
    assert np.all(gamma == RESIDUAL_GAMMA)
    assert np.all(synthesise("backbone.bottom_up.res3.0.conv1.norm.weight", (128,)) == 1)
    stem_var = synthesise("backbone.bottom_up.stem.conv1.norm.running_var", (64,),
                          input_second_moment=100.0)
    assert np.all(stem_var == 200.0)
    bias = synthesise("roi_heads.box_predictor.cls_score.bias", (81,))
    assert bias[-1] == BACKGROUND_BIAS and not bias[:-1].any()


def test_basic_blocks_scale_their_second_conv():
    name = "backbone.bottom_up.res2.0.conv2.norm.weight"
    assert np.all(synthesise(name, (64,), basic_blocks=True) == RESIDUAL_GAMMA)
    assert np.all(synthesise(name, (64,), basic_blocks=False) == 1.0)


def test_store_records_requests_and_needs_shapes():
    store = SyntheticWeights(seed=3)
    w = store.get("a.weight", (4, 2))
    assert store.get_optional("a.bias", (4,)) is not None
    assert set(store.state_dict()) == {"a.weight", "a.bias"}
    np.testing.assert_array_equal(store.state_dict()["a.weight"], w)
    with pytest.raises(ValueError, match="concrete shape"):
        store.get("b.weight", (None, 3))
    store.finish()  # nothing is ever missing


def test_full_width_faster_rcnn_runs_and_detects():
    """R50-FPN Faster R-CNN at zoo width: builds, runs in ONNX Runtime, gives sane detections."""
    cfg = zoo_config("COCO-Detection/faster_rcnn_R_50_FPN_3x")
    assert cfg.MODEL.RESNETS.DEPTH == 50 and cfg.MODEL.ROI_HEADS.NUM_CLASSES == 80
    model = build_random_model("COCO-Detection/faster_rcnn_R_50_FPN_3x")
    sizes = {t.name.rsplit("/", 1)[-1]: tuple(t.dims) for t in model.graph.initializer}
    assert sizes["backbone.bottom_up.res5.2.conv3.weight"] == (2048, 512, 1, 1)
    assert sizes["roi_heads.box_head.fc1.weight"] == (1024, 256 * 7 * 7)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).uniform(0, 255, (1, 3, 256, 320)).astype(np.float32)
    boxes, scores, classes = sess.run(["boxes", "scores", "classes"], {"image": x})
    assert 0 < len(boxes) <= cfg.TEST.DETECTIONS_PER_IMAGE
    assert np.isfinite(boxes).all() and (scores > cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST).all()
    assert (boxes[:, 2] <= 320).all() and (boxes[:, 3] <= 256).all()
    assert classes.min() >= 0 and classes.max() < 80
