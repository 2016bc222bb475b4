"""``d2stream verify`` compares a Panoptic FPN's semantic labels and panoptic segment ids with
Detectron2's, pixel by pixel (the Detectron2 side here: the fixture's own saved outputs)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from daemon.cli.verify_cmd import PIXEL_AGREEMENT, _label_agreements
from daemon.inference.predictor import Predictor
from tests.conftest import require_fixtures

PANOPTIC = "panoptic_fpn_R_50"


@pytest.fixture(scope="module")
def panoptic(exported):
    root = require_fixtures() / PANOPTIC
    compact = Predictor(exported(PANOPTIC)).predict_compact(cv2.imread(str(root / "image_0.png")))
    expected = np.load(root / "expected_0.npz")
    return compact, {"sem_seg_labels": expected["sem_seg_argmax"],
                     "panoptic_seg": expected["panoptic_seg"]}


def test_labels_and_segment_ids_agree_with_detectron2(panoptic) -> None:
    compact, ref = panoptic
    found = _label_agreements(ref, compact)
    assert set(found) == {"sem_seg", "panoptic_seg"}
    assert min(found.values()) >= PIXEL_AGREEMENT
    assert _label_agreements(ref, compact, compact.to_instances()) == found  # pasted once


def test_other_segment_ids_lower_the_panoptic_agreement(panoptic) -> None:
    compact, ref = panoptic
    shuffled = ref["panoptic_seg"].copy()
    thing = shuffled == shuffled.max()  # one segment's pixels given another id
    assert thing.mean() > 0.002
    shuffled[thing] = shuffled.max() + 1
    found = _label_agreements({"panoptic_seg": shuffled}, compact)
    assert set(found) == {"panoptic_seg"}
    assert found["panoptic_seg"] == pytest.approx(1 - thing.mean(), abs=1e-3)
    assert found["panoptic_seg"] < PIXEL_AGREEMENT
