"""``CompactPrediction``: per-instance selection and the outputs built from it."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from daemon.inference.predictor import CompactPrediction, Predictor
from tests.conftest import require_fixtures

PANOPTIC = "panoptic_fpn_R_50"


def test_fields_split_into_per_instance_and_per_image() -> None:
    names = {f.name for f in dataclasses.fields(CompactPrediction)}
    assert set(CompactPrediction.PER_INSTANCE) <= names
    assert "PER_INSTANCE" not in names
    assert {"sem_seg_logits", "net_hw", "panoptic", "image_size"} <= names


def test_select_keeps_per_image_fields(export_fixture_model) -> None:
    pred = Predictor(export_fixture_model(PANOPTIC))
    image = cv2.imread(str(require_fixtures() / PANOPTIC / "image_0.png"))
    compact = pred.predict_compact(image)
    num_classes = compact.sem_seg_logits.shape[0]
    assert len(compact) > num_classes
    first = compact.select(np.arange(num_classes))  # as many instances as semantic classes
    assert len(first) == num_classes and first.mask_probs.shape[0] == num_classes
    assert first.sem_seg_logits is compact.sem_seg_logits
    np.testing.assert_array_equal(first.boxes, compact.boxes[:num_classes])
    # Instances below the combine's confidence threshold never reach the panoptic output.
    confident = compact.select(compact.scores >= pred.metadata.panoptic[
        "instances_confidence_thresh"])
    full, kept = compact.to_panoptic(), confident.to_panoptic()
    np.testing.assert_array_equal(full.panoptic_seg, kept.panoptic_seg)
    assert full.segments_info == kept.segments_info


def test_worker_packing_keeps_semantic_logits(export_fixture_model) -> None:
    """Packing for the worker pipe filters instances, never the per-image semantic logits."""
    from daemon.pipeline.worker import pack_prediction, unpack_prediction

    pred = Predictor(export_fixture_model(PANOPTIC))
    image = cv2.imread(str(require_fixtures() / PANOPTIC / "image_0.png"))
    compact = pred.predict_compact(image)
    three = compact.select(np.arange(compact.sem_seg_logits.shape[0]))  # N == C
    keep = three.scores >= 0.6
    rebuilt = unpack_prediction(pack_prediction(three, 0.6))
    assert len(rebuilt) == int(keep.sum()) < len(three)
    np.testing.assert_array_equal(rebuilt.sem_seg_logits, compact.sem_seg_logits)
    assert rebuilt.panoptic == compact.panoptic and rebuilt.net_hw == compact.net_hw
    np.testing.assert_array_equal(rebuilt.to_panoptic().panoptic_seg,
                                  three.select(keep).to_panoptic().panoptic_seg)
