"""Fast R-CNN's per-class NMS on the ``(K, R)`` score grid (``nms.grid_nms_ranked``) keeps
exactly what per-class NMS on the candidate list keeps (``nms.batched_nms_ranked``), in real
ONNX Runtime sessions, and stays small where the list layout needed ``K x N`` (LVIS: 1203
classes, every one of 1000 proposals a candidate: 1.2 M candidates, > 20 GB that way)."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from export_tools.graph.builder import GraphBuilder
from export_tools.modeling.nms import batched_nms_ranked, grid_nms_ranked

THRESH, IOU = 0.3, 0.5


def _session(num_classes: int, per_class: bool, both: bool) -> ort.InferenceSession:
    g = GraphBuilder("nms")
    shape = ["R", num_classes, 4] if per_class else ["R", 4]
    boxes = g.add_input("boxes", onnx.TensorProto.FLOAT, shape)
    scores = g.add_input("scores", onnx.TensorProto.FLOAT, ["R", num_classes])
    candidate = g.op("Greater", [scores, g.f32(THRESH)])
    nz = g.op("NonZero", [candidate])
    rows = g.reshape(g.slice(nz, [0], [1], [0]), [-1])
    cls = g.reshape(g.slice(nz, [1], [2], [0]), [-1])
    flat = g.op("Add", [g.op("Mul", [rows, g.i64(num_classes)]), cls])
    cand_scores = g.gather(g.reshape(scores, [-1]), flat)
    grid = g.op("Where", [candidate, scores, g.f32(-np.inf)])
    ranked = grid_nms_ranked(g, boxes, grid, candidate, cand_scores, num_classes, per_class,
                             IOU, 100)
    g.add_output(ranked.keep, "grid_keep", onnx.TensorProto.INT64, ["S"])
    g.add_output(ranked.top, "grid_top", onnx.TensorProto.INT64, ["T"])
    if both:
        cand_boxes = g.gather(g.reshape(boxes, [-1, 4]), flat if per_class else rows)
        listed = batched_nms_ranked(g, cand_boxes, cand_scores, cls, num_classes, IOU, 100)
        g.add_output(listed.keep, "list_keep", onnx.TensorProto.INT64, ["S2"])
        g.add_output(listed.top, "list_top", onnx.TensorProto.INT64, ["T2"])
    return ort.InferenceSession(g.build().SerializeToString(), providers=["CPUExecutionProvider"])


def _inputs(rng, r: int, k: int, per_class: bool) -> dict[str, np.ndarray]:
    xy = rng.uniform(0, 200, (r, k, 2) if per_class else (r, 2)).astype(np.float32)
    wh = rng.uniform(5, 60, xy.shape).astype(np.float32)
    boxes = np.concatenate([xy, xy + wh], -1)
    scores = rng.uniform(0, 1, (r, k)).astype(np.float32)
    scores[rng.uniform(size=(r, k)) < 0.1] = 0.75  # equal scores: ties in and across classes
    return {"boxes": boxes, "scores": scores}


@pytest.mark.parametrize("per_class", [False, True], ids=["shared_boxes", "per_class_boxes"])
def test_grid_layout_keeps_what_the_candidate_list_keeps(per_class: bool) -> None:
    sess = _session(7, per_class, both=True)
    rng = np.random.default_rng(3)
    for r in (0, 1, 40, 300):
        grid_keep, grid_top, list_keep, list_top = sess.run(None, _inputs(rng, r, 7, per_class))
        np.testing.assert_array_equal(grid_keep, list_keep)
        np.testing.assert_array_equal(grid_top, list_top)
        assert r < 40 or len(grid_keep) > 50  # something was suppressed and much was kept


def test_lvis_sized_grid_runs_with_every_cell_a_candidate() -> None:
    k, r = 1203, 1000
    sess = _session(k, per_class=False, both=False)
    inputs = _inputs(np.random.default_rng(5), r, k, per_class=False)
    inputs["scores"] = np.maximum(inputs["scores"], THRESH + 0.01)  # all 1.2 M are candidates
    keep, top = sess.run(None, inputs)
    assert len(keep) >= k and np.all(np.diff(keep) > 0) and keep.max() < k * r
    assert len(top) >= 100
    cls = keep % k  # a candidate's class (row-major over a full grid)
    assert len(np.unique(cls)) == k  # every class keeps its best box at least
