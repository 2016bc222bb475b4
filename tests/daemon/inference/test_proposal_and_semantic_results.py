"""ProposalNetwork and SemanticSegmentor results on the device side (no model needed)."""

from __future__ import annotations

import numpy as np

from d2common.metadata import ModelMetadata
from daemon.inference.instances import Instances
from daemon.inference.predictor import postprocess
from daemon.inference.records import image_record
from daemon.inference.semantic import semantic_segments


def _meta(outputs: list[str], arch: str) -> ModelMetadata:
    return ModelMetadata("m", arch, ["object"], "BGR", 320, 533, 0.05, 0.5, 100, outputs, "0")


def test_proposals_are_rescaled_and_filtered_like_detector_postprocess() -> None:
    meta = _meta(["boxes", "scores", "classes", "objectness_logits"], "ProposalNetwork")
    assert meta.has_proposals and not meta.has_sem_seg
    logits = np.array([3.0, 1.0, -2.0], np.float32)
    raw = {"boxes": np.array([[0, 0, 10, 10], [20, 20, 20, 30], [5, 5, 400, 8]], np.float32),
           "scores": 1 / (1 + np.exp(-logits)), "classes": np.zeros(3, np.int64),
           "objectness_logits": logits}
    compact = postprocess(raw, (100, 200), (50, 100), meta)
    # the second box is empty (zero width) and dropped; the third is clipped to the image
    np.testing.assert_array_equal(compact.objectness_logits, [3.0, -2.0])
    np.testing.assert_allclose(compact.boxes, [[0, 0, 5, 5], [2.5, 2.5, 100, 4]])
    inst = compact.to_instances()
    assert inst.proposal_boxes is inst.pred_boxes
    assert len(inst[inst.objectness_logits > 0]) == 1
    record = image_record("a.png", inst, meta)
    assert [r["objectness_logit"] for r in record["instances"]] == [3.0, -2.0]
    assert record["instances"][0]["category_name"] == "object"


def test_semantic_labels_become_stuff_segments() -> None:
    labels = np.array([[0, 0, 2], [2, 2, 5]], np.int32)
    result = semantic_segments(labels)
    assert [(s["category_id"], s["area"]) for s in result.segments_info] == [(0, 2), (2, 3),
                                                                             (5, 1)]
    assert all(not s["isthing"] for s in result.segments_info)
    np.testing.assert_array_equal(result.panoptic_seg, labels + 1)
    meta = _meta(["boxes", "scores", "classes", "sem_seg"], "SemanticSegmentor")
    assert meta.has_sem_seg and not meta.has_panoptic
    record = image_record("a.png", Instances.empty((2, 3)), meta, result)
    assert [s["area"] for s in record["panoptic"]["segments_info"]] == [2, 3, 1]
