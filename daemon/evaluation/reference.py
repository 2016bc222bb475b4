"""Run the original Detectron2 model (``DefaultPredictor``) when torch and detectron2 are installed.

Only ``d2stream verify`` uses this, on a desktop; the device side never imports torch.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from d2common.errors import D2StreamError
from daemon.evaluation.parity import Thresholds
from daemon.inference.instances import Instances

logger = logging.getLogger(__name__)

INSTALL_HINT = (
    "d2stream verify runs the original model and needs PyTorch and Detectron2 on this machine: "
    "pip install torch==2.13.0 torchvision, then build Detectron2 from source with "
    "pip install --no-build-isolation 'git+https://github.com/facebookresearch/detectron2.git' "
    "(Detectron2 has no PyPI release)"
)


class ReferenceUnavailable(D2StreamError):
    """torch or detectron2 cannot be imported here."""

    exit_code = 3


def missing_reference_packages() -> list[str]:
    """Names of the packages (``torch``, ``detectron2``) that cannot be imported, if any."""
    return [m for m in ("torch", "detectron2") if importlib.util.find_spec(m) is None]


def require_reference() -> None:
    """Raise :class:`ReferenceUnavailable` with install instructions when packages are missing."""
    missing = missing_reference_packages()
    if missing:
        raise ReferenceUnavailable(f"{' and '.join(missing)} not installed. {INSTALL_HINT}")


def d2_to_instances(d2: Any) -> Instances:
    """Detectron2 ``Instances`` (on any device) -> our numpy :class:`Instances`."""
    d2 = d2.to("cpu")
    fields = d2.get_fields()
    return Instances(
        tuple(d2.image_size),
        fields["pred_boxes"].tensor.numpy(),
        fields["scores"].numpy(),
        fields["pred_classes"].numpy(),
        pred_masks=fields["pred_masks"].numpy() if "pred_masks" in fields else None,
        pred_keypoints=fields["pred_keypoints"].numpy() if "pred_keypoints" in fields else None,
    )


def output_to_instances(output: dict[str, Any]) -> Instances:
    """One image of ``DefaultPredictor``'s output as our :class:`Instances`: ``instances``;
    a ProposalNetwork's ``proposals`` (scores = sigmoid of the objectness logits, class 0, as
    d2stream's export gives them); a SemanticSegmentor's ``sem_seg`` as no instances with the
    argmax labels in ``extra["sem_seg_labels"]``; a PanopticFPN's instances with those labels
    and its ``panoptic_seg`` segment ids in ``extra["panoptic_seg"]``."""
    if "instances" in output:
        inst = d2_to_instances(output["instances"])
        if "sem_seg" in output:  # PanopticFPN: its semantic labels and panoptic segment ids too
            labels = output["sem_seg"].to("cpu").numpy().argmax(axis=0).astype(np.int32)
            inst.extra["sem_seg_labels"] = labels
        if "panoptic_seg" in output:
            seg = output["panoptic_seg"][0].to("cpu").numpy().astype(np.int32)
            inst.extra["panoptic_seg"] = seg
        return inst
    if "proposals" in output:
        p = output["proposals"].to("cpu")
        logits = p.objectness_logits.numpy().astype(np.float32)
        return Instances(tuple(p.image_size), p.proposal_boxes.tensor.numpy(),
                         1.0 / (1.0 + np.exp(-logits)), np.zeros(len(logits), np.int64),
                         objectness_logits=logits)
    logits = output["sem_seg"].to("cpu").numpy()
    inst = Instances.empty(logits.shape[1:])
    inst.extra["sem_seg_labels"] = logits.argmax(axis=0).astype(np.int32)
    return inst


def thresholds_from_cfg(cfg: Any) -> Thresholds:
    """Score threshold and detection cap of a Detectron2 config (any meta-architecture)."""
    arch = str(cfg.MODEL.META_ARCHITECTURE)
    if arch in ("ProposalNetwork", "SemanticSegmentor"):  # every proposal is kept
        return Thresholds(0.0, int(cfg.MODEL.RPN.POST_NMS_TOPK_TEST))
    heads = cfg.MODEL.RETINANET if arch == "RetinaNet" else cfg.MODEL.ROI_HEADS
    return Thresholds(float(heads.SCORE_THRESH_TEST), int(cfg.TEST.DETECTIONS_PER_IMAGE))


def load_reference(
    config_file: Path, weights: Path, device: str = "cpu"
) -> tuple[Callable[[np.ndarray], Instances], Thresholds]:
    """Build Detectron2's ``DefaultPredictor``; returns ``(BGR image -> Instances, thresholds)``."""
    require_reference()
    import torch  # noqa: PLC0415 - optional, desktop only
    from detectron2.config import get_cfg  # noqa: PLC0415
    from detectron2.engine import DefaultPredictor  # noqa: PLC0415

    cfg = get_cfg()
    try:
        cfg.merge_from_file(str(config_file))
    except Exception as exc:  # noqa: BLE001 - detectron2 raises many kinds; report one line
        raise D2StreamError(f"detectron2 cannot read config {config_file}: {exc}") from None
    cfg.MODEL.WEIGHTS = str(weights)
    cfg.MODEL.DEVICE = device
    cfg.freeze()
    predictor = DefaultPredictor(cfg)
    logger.info("reference: detectron2 DefaultPredictor on %s", device)

    def run(bgr: np.ndarray) -> Instances:
        with torch.no_grad():
            return output_to_instances(predictor(bgr))

    return run, thresholds_from_cfg(cfg)
