"""Compare two models' detections on the same images (``d2stream verify``).

Instances are matched as sets, not by position: scores of weak models tie, so the order of two
runs can differ. Each reference instance (highest score first) is paired with the unmatched
instance of the other side that has the same class, overlaps it (IoU >= 0.5) and is closest in
box and score (each measured in units of its tolerance). An instance left without a partner is
only acceptable when its score lies within the score tolerance of the other side's score
threshold (or of its lowest kept score when that side hit the detections-per-image cap): such
instances fall on either side of the threshold by rounding alone.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from daemon.inference.instances import Instances


@dataclass(frozen=True)
class Tolerances:
    """Largest differences accepted between the reference and the exported model."""

    score: float = 1e-4
    box_px: float = 0.1
    mask_iou: float = 0.99
    keypoint_px: float = 0.1


@dataclass(frozen=True)
class Thresholds:
    """The post-processing limits that decide which weak instances are kept."""

    score: float = 0.05
    max_detections: int = 100


@dataclass
class ImageParity:
    """Differences on one image. ``None`` where a measure does not apply (no pairs, no masks)."""

    image: str
    num_reference: int
    num_ours: int
    num_matched: int
    box_max_abs_px: float | None = None
    score_max_abs: float | None = None
    mask_iou_min: float | None = None
    keypoint_max_abs_px: float | None = None
    unmatched_reference_scores: list[float] = field(default_factory=list)
    unmatched_ours_scores: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


def _box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of ``(4,)`` box ``a`` with ``(M, 4)`` boxes ``b`` (xyxy)."""
    lt = np.maximum(a[:2], b[:, :2])
    rb = np.minimum(a[2:], b[:, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=1)
    area_a = np.prod(np.clip(a[2:] - a[:2], 0, None))
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    union = area_a + area_b - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def match_instances(ref: Instances, ours: Instances, tol: Tolerances) -> list[tuple[int, int]]:
    """Greedy one-to-one pairs ``(i_ref, j_ours)``, reference instances by descending score."""
    free = np.ones(len(ours), bool)
    pairs: list[tuple[int, int]] = []
    for i in np.argsort(-ref.scores, kind="stable"):
        cand = np.flatnonzero(free & (ours.pred_classes == ref.pred_classes[i]))
        if cand.size == 0:
            continue
        iou = _box_iou(ref.pred_boxes[i].astype(np.float64),
                       ours.pred_boxes[cand].astype(np.float64))
        cand, iou = cand[iou >= 0.5], iou[iou >= 0.5]
        if cand.size == 0:
            continue
        box_d = np.abs(ours.pred_boxes[cand] - ref.pred_boxes[i]).max(axis=1) / tol.box_px
        score_d = np.abs(ours.scores[cand] - ref.scores[i]) / tol.score
        j = int(cand[np.argmin(box_d + score_d)])
        free[j] = False
        pairs.append((int(i), j))
    return pairs


def _floor(inst: Instances, th: Thresholds) -> float:
    """Score below which an instance of the *other* side may legitimately be missing here."""
    if len(inst) >= th.max_detections > 0:
        return max(th.score, float(inst.scores.min()))
    return th.score


def _mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def compare_image(
    name: str, ref: Instances, ours: Instances,
    tol: Tolerances = Tolerances(), th: Thresholds = Thresholds(),  # noqa: B008 - frozen
) -> ImageParity:
    """Match ``ours`` against ``ref`` and measure the worst differences on this image."""
    ours_floor, ref_floor = _floor(ours, th), _floor(ref, th)
    pairs = _drop_floor_ties(match_instances(ref, ours, tol), ref, ours, tol,
                             ours_floor, ref_floor)
    out = ImageParity(name, len(ref), len(ours), len(pairs))
    if ref.image_size != ours.image_size:
        out.failures.append(f"image size {ours.image_size} != reference {ref.image_size}")
    if pairs:
        ri, oj = (np.array(x) for x in zip(*pairs, strict=True))
        out.box_max_abs_px = float(np.abs(ref.pred_boxes[ri] - ours.pred_boxes[oj]).max())
        out.score_max_abs = float(np.abs(ref.scores[ri] - ours.scores[oj]).max())
        if ref.pred_masks is not None and ours.pred_masks is not None and not out.failures:
            out.mask_iou_min = min(_mask_iou(ref.pred_masks[i], ours.pred_masks[j])
                                   for i, j in pairs)
        if ref.pred_keypoints is not None and ours.pred_keypoints is not None:
            diff = ref.pred_keypoints[ri, :, :2] - ours.pred_keypoints[oj, :, :2]
            out.keypoint_max_abs_px = float(np.abs(diff).max())
    matched_ref = {i for i, _ in pairs}
    matched_ours = {j for _, j in pairs}
    out.unmatched_reference_scores = [float(ref.scores[i]) for i in range(len(ref))
                                      if i not in matched_ref]
    out.unmatched_ours_scores = [float(ours.scores[j]) for j in range(len(ours))
                                 if j not in matched_ours]
    _judge(out, tol, ours_floor, ref_floor)
    return out


def _drop_floor_ties(pairs: list[tuple[int, int]], ref: Instances, ours: Instances,
                     tol: Tolerances, ours_floor: float, ref_floor: float
                     ) -> list[tuple[int, int]]:
    """Unpair what is two tie instances, not one instance: a pair whose boxes differ beyond the
    tolerance while both scores lie within the score tolerance of the floor at which the other
    side may lack them (the threshold, or the lowest kept score at the detections cap). Each may
    be missing on the other side, and its true partner is; pairing them would report a box
    difference that no instance has. Nothing is loosened: an unpaired instance above its floor
    still fails as missing or extra."""
    kept = []
    for i, j in pairs:
        off = np.abs(ref.pred_boxes[i] - ours.pred_boxes[j]).max() > tol.box_px
        at_floor = (ref.scores[i] <= ours_floor + tol.score
                    and ours.scores[j] <= ref_floor + tol.score)
        if not (off and at_floor):
            kept.append((i, j))
    return kept


def _judge(out: ImageParity, tol: Tolerances, ours_floor: float, ref_floor: float) -> None:
    checks = [
        ("box", out.box_max_abs_px, tol.box_px, "px"),
        ("score", out.score_max_abs, tol.score, ""),
        ("keypoint", out.keypoint_max_abs_px, tol.keypoint_px, "px"),
    ]
    for what, value, limit, unit in checks:
        if value is not None and value > limit:
            out.failures.append(f"{what} differs by {value:.4g}{unit} (tolerance {limit:g}{unit})")
    if out.mask_iou_min is not None and out.mask_iou_min < tol.mask_iou:
        out.failures.append(f"mask IoU {out.mask_iou_min:.4f} < {tol.mask_iou:g}")
    missing = [s for s in out.unmatched_reference_scores if s > ours_floor + tol.score]
    extra = [s for s in out.unmatched_ours_scores if s > ref_floor + tol.score]
    if missing:
        out.failures.append(f"{len(missing)} reference instance(s) missing (best score "
                            f"{max(missing):.4f})")
    if extra:
        out.failures.append(f"{len(extra)} extra instance(s) (best score {max(extra):.4f})")


@dataclass
class ParityReport:
    """Per-image parity of an exported model with its reference, and the overall verdict."""

    model: str
    reference: str
    images: list[ImageParity]
    tolerances: Tolerances = field(default_factory=Tolerances)
    thresholds: Thresholds = field(default_factory=Thresholds)

    @property
    def passed(self) -> bool:
        return all(im.passed for im in self.images)

    def to_json(self) -> dict[str, Any]:
        images = [{**asdict(im), "passed": im.passed} for im in self.images]
        return {"model": self.model, "reference": self.reference, "passed": self.passed,
                "tolerances": asdict(self.tolerances), "thresholds": asdict(self.thresholds),
                "images": images}

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=1)

    def format_table(self) -> str:
        head = (f"{'image':<24}{'ref':>5}{'ours':>6}{'match':>6}{'box px':>10}{'score':>10}"
                f"{'mask IoU':>10}{'kp px':>9}  result")
        rows = [head]
        for im in self.images:
            rows.append(
                f"{_short(im.image, 24):<24}{im.num_reference:>5}{im.num_ours:>6}"
                f"{im.num_matched:>6}{_num(im.box_max_abs_px):>10}{_num(im.score_max_abs):>10}"
                f"{_num(im.mask_iou_min):>10}{_num(im.keypoint_max_abs_px):>9}  "
                + ("PASS" if im.passed else "FAIL: " + "; ".join(im.failures))
            )
        t = self.tolerances
        rows.append(f"tolerances: score {t.score:g}, box {t.box_px:g} px, mask IoU >= "
                    f"{t.mask_iou:g}, keypoints {t.keypoint_px:g} px")
        failed = sum(not im.passed for im in self.images)
        rows.append(f"{'PASS' if self.passed else 'FAIL'}: {len(self.images) - failed} of "
                    f"{len(self.images)} images within tolerance")
        return "\n".join(rows)


def _num(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.2e}" if 0 < abs(value) < 1e-2 else f"{value:.4f}"


def _short(text: str, width: int) -> str:
    return text if len(text) <= width - 1 else "…" + text[-(width - 2):]


def compare_many(names: Sequence[str], refs: Sequence[Instances], ours: Sequence[Instances],
                 tol: Tolerances, th: Thresholds, model: str, reference: str) -> ParityReport:
    """Build a :class:`ParityReport` from per-image instance pairs."""
    images = [compare_image(n, r, o, tol, th) for n, r, o in zip(names, refs, ours, strict=True)]
    return ParityReport(model, reference, images, tol, th)
