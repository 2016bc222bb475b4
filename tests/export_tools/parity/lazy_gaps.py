"""The LazyConfig fixtures' parity checks and the gaps measured on them, shared by
``test_lazy_parity.py`` (ours against the fixture) and ``test_lazy_exact_reference.py`` (the
exact answer against the fixture), so both apply the very same checks."""

from __future__ import annotations

import numpy as np

from daemon.evaluation.parity import Thresholds, Tolerances, compare_image, match_instances
from daemon.inference.instances import Instances
from tests.conftest import LAZY_MODELS

RAW_TOL = Tolerances(score=1e-4, box_px=1e-2)
FINAL_TOL = Tolerances(score=1e-4, box_px=1e-1, mask_iou=0.99)
MASK_PROB_TOL = 1e-4
PAIRING = Tolerances(score=1e-3, box_px=1.0)  # pairs instances for the mask-probability check
IMAGES = range(3)
R50, REGNETX, REGNETY, VITDET = LAZY_MODELS[:4]

# Measured on the fixtures (2-vCPU VM, ONNX Runtime CPU): differences that stay above a
# tolerance. Each is also missed by Detectron2 itself computed exactly (float64,
# ``lazy_exact/``, checked by test_lazy_exact_reference.py): the fixtures' own float32 values are
# further from the exact answer than the tolerance. The RegNet fixtures are 20-40x more
# sensitive to float32 rounding than R50 (1e-4 of input noise moves their scores by up to 2e-3,
# R50's by 5e-5); no structural error was found.
KNOWN_GAPS = {
    ("raw_masks", R50): "raw mask probabilities differ by up to 1.7e-4 (tolerance 1e-4); "
                        "Detectron2 in float64: 1.6e-4",
    ("raw", REGNETX): "scores differ by up to 1.9e-4 (tolerance 1e-4) on images 0 and 1; "
                      "Detectron2 in float64: 1.3e-4",
    ("final", REGNETX): "scores up to 1.9e-4 (tolerance 1e-4); one mask IoU 0.9895",
    ("raw_masks", REGNETX): "raw mask probabilities differ by up to 1.7e-3; "
                            "Detectron2 in float64: 1.5e-3",
    ("raw", REGNETY): "scores up to 5.2e-4 (tolerance 1e-4), boxes within 6.1e-3 px; image 1 "
                      "loses one instance to an RPN NMS tie; Detectron2 in float64: scores 3.1e-4",
    ("final", REGNETY): "scores up to 5.2e-4 (tolerance 1e-4); image 1: the RPN NMS tie",
    ("raw_masks", REGNETY): "raw mask probabilities differ by up to 4.0e-3; "
                            "Detectron2 in float64: 3.2e-3",
    ("raw_masks", VITDET): "raw mask probabilities differ by up to 1.1e-4 on image 0 (boxes "
                           "within 1.2e-4 px, scores within 3e-6); Detectron2 in float64: 1.5e-4",
}


def raw_failures(name: str, ref: Instances, cand: Instances, thresholds: Thresholds) -> list[str]:
    """The raw check: every instance paired, boxes within 1e-2 px, scores within 1e-4."""
    return compare_image(name, ref, cand, RAW_TOL, thresholds).failures


def mask_prob_gap(ref: Instances, ref_probs: np.ndarray, cand: Instances,
                  cand_probs: np.ndarray) -> tuple[int, float]:
    """``(paired, worst)``: how many of ``ref``'s instances pair with ``cand``'s and the largest
    difference of their raw ``(N, 28, 28)`` mask probabilities."""
    pairs = match_instances(ref, cand, PAIRING)
    worst = max((float(np.abs(ref_probs[a] - cand_probs[b]).max()) for a, b in pairs),
                default=0.0)
    return len(pairs), worst
