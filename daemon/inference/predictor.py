"""``Predictor``: an exported ``.onnx`` model as a function from a BGR image to ``Instances``.

The graph works at network resolution; this module does what ``DefaultPredictor`` does around the
model: ResizeShortestEdge before, ``detector_postprocess`` (and mask pasting) after.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import ClassVar

import numpy as np

from d2common.errors import InputImageError, ModelError
from d2common.metadata import ModelMetadata
from d2common.transforms import rescale_boxes, to_network_input
from daemon.inference.backends import (
    DEFAULT_BACKEND,
    Backend,
    BackendOptions,
    RemoteOptions,
    create_backend,
)
from daemon.inference.backends.auto import AUTO, load_fastest
from daemon.inference.backends.ort_backend import session_options
from daemon.inference.instances import Instances
from daemon.inference.keypoints import heatmaps_to_keypoints, rescale_keypoints
from daemon.inference.masks import paste_mask, paste_masks
from daemon.inference.output_checks import check_outputs
from daemon.inference.panoptic import (
    PanopticResult,
    PanopticSettings,
    combine_panoptic,
    full_masks,
)
from daemon.inference.semantic import sem_seg_labels, semantic_segments
from daemon.inference.tie_order import detectron2_rows

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CompactPrediction:
    """Model outputs at the original image resolution, before masks are pasted.

    Arrays: ``boxes (N, 4)`` xyxy, ``scores (N,)``, ``classes (N,)`` int64,
    ``mask_probs (N, M, M)``, ``keypoints (N, K, 3)`` (x, y, score). Panoptic models add
    ``sem_seg_logits (C, h, w)``, the semantic logits at ``1 / panoptic.sem_seg_stride`` of the
    padded network input of size ``net_hw`` (SemanticSegmentor models too, with no instances).
    ProposalNetwork models: ``boxes`` are the proposals, ``objectness_logits (N,)`` their logits
    (``scores`` their sigmoid, ``classes`` all 0). Small enough to pass between processes.
    """

    #: Fields with one row per instance (``select`` filters them; the others are per image).
    PER_INSTANCE: ClassVar[tuple[str, ...]] = ("boxes", "scores", "classes", "mask_probs",
                                               "keypoints", "objectness_logits")

    image_size: tuple[int, int]
    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray
    mask_probs: np.ndarray | None = None
    keypoints: np.ndarray | None = None
    mask_threshold: float = 0.5
    sem_seg_logits: np.ndarray | None = None
    net_hw: tuple[int, int] | None = None
    panoptic: PanopticSettings | None = None
    objectness_logits: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    def select(self, keep: np.ndarray) -> CompactPrediction:
        """The instances picked by ``keep`` (bool mask or indices); per-image fields unchanged."""
        picked = {name: getattr(self, name)[keep] for name in self.PER_INSTANCE
                  if getattr(self, name) is not None}
        return replace(self, **picked)

    def to_instances(self, paste: bool = True) -> Instances:
        """Full ``Instances``; masks pasted into the image when ``paste``."""
        masks = None
        if paste and self.mask_probs is not None:
            masks = paste_masks(self.mask_probs, self.boxes, self.image_size, self.mask_threshold)
        return Instances(self.image_size, self.boxes, self.scores, self.classes, pred_masks=masks,
                         pred_keypoints=self.keypoints, mask_probs=self.mask_probs,
                         objectness_logits=self.objectness_logits)

    def sem_seg_labels(self) -> np.ndarray | None:
        """Semantic labels ``(H, W)`` int32 at the image resolution (panoptic models)."""
        if self.sem_seg_logits is None or self.net_hw is None:
            return None
        stride = (self.panoptic or PanopticSettings()).sem_seg_stride
        return sem_seg_labels(self.sem_seg_logits, stride, self.net_hw, self.image_size)

    def to_semantic(self) -> PanopticResult:
        """A SemanticSegmentor's labels as a :class:`PanopticResult` of stuff segments only:
        one segment per label present (``id`` = label + 1, ``category_id`` = label)."""
        labels = self.sem_seg_labels()
        if labels is None:
            raise ModelError("this model has no semantic segmentation output (sem_seg)")
        return semantic_segments(labels)

    def to_panoptic(self, instances: Instances | None = None) -> PanopticResult:
        """Panoptic segmentation as Detectron2's ``PanopticFPN`` returns it.

        ``instances``: this prediction's ``Instances`` with pasted masks, to reuse them;
        otherwise each confident instance's mask is pasted on its own.
        """
        labels = self.sem_seg_labels()
        if labels is None or self.mask_probs is None:
            raise ModelError("this model has no panoptic outputs (sem_seg and mask_probs)")
        if instances is not None and instances.pred_masks is not None:
            masks = full_masks(instances.pred_masks)
        else:
            def masks(i: int) -> tuple[np.ndarray, tuple[slice, slice]]:
                return paste_mask(self.mask_probs[i], self.boxes[i], self.image_size,
                                  self.mask_threshold)
        return combine_panoptic(self.scores, self.classes, masks, labels,
                                self.panoptic or PanopticSettings())


__all__ = ["CompactPrediction", "Predictor", "postprocess", "session_options"]


class Predictor:
    """Loads the model once; call it with BGR ``(H, W, 3)`` uint8 images.

    Args:
        model_path: an ``.onnx`` file written by ``d2stream export``.
        num_threads: inference threads (None: the backend's default, one per core).
        min_size / max_size: override the export's INPUT.MIN_SIZE_TEST / MAX_SIZE_TEST.
        backend: ``auto`` (default: the fastest installed engine for this model on this machine,
            measured on first use and cached, see :mod:`daemon.inference.backends.auto`),
            ``onnxruntime`` or ``openvino`` to force one, or ``remote`` (an Open Inference
            Protocol server; ``auto`` never picks it).
        optimized_cache: ONNX Runtime: folder caching the optimised graph (faster cold start);
            ``auto`` caches its choice there too.
        spin_wait: ONNX Runtime: inference threads busy-wait between runs (see
            :class:`~daemon.inference.backends.base.BackendOptions`).
        spin_after_run: ONNX Runtime, with ``spin_wait``: the threads go on spinning after a
            run (default, fastest back to back); ``False``: they sleep between runs.
        remote: backend ``remote``: the server; ``model_path`` is then the local model for
            the metadata check and the fallback (may be absent with ``fallback: drop``).
    """

    def __init__(self, model_path: str | os.PathLike, num_threads: int | None = None,
                 min_size: int | None = None, max_size: int | None = None,
                 backend: str = DEFAULT_BACKEND, optimized_cache: str | None = None,
                 spin_wait: bool = True, remote: RemoteOptions | None = None,
                 spin_after_run: bool = True) -> None:
        path = Path(model_path)
        if backend != "remote" and not path.is_file():
            raise ModelError(f"model file not found: {path}")
        options = BackendOptions(num_threads, optimized_cache, spin_wait, remote,
                                 spin_after_run)
        self.path = path
        self.backend = open_backend(path, backend, options, min_size, max_size)
        self.metadata = ModelMetadata.from_props(self.backend.metadata_props, str(path))
        self.min_size = int(min_size or self.metadata.min_size_test)
        self.max_size = int(max_size or self.metadata.max_size_test)
        log.info("loaded %s (%s, %d classes) with %s", path, self.metadata.meta_architecture,
                 len(self.metadata.class_names), self.backend.name)

    @property
    def session(self):
        """The ONNX Runtime session (onnxruntime backend only)."""
        session = getattr(self.backend, "session", None)
        if session is None:
            raise AttributeError(f"the {self.backend.name} backend has no ONNX Runtime session")
        return session

    def preprocess(self, image_bgr: np.ndarray) -> np.ndarray:
        """The network input ``(1, 3, h, w)`` float32 for one image."""
        _check_image(image_bgr)
        return to_network_input(image_bgr, self.metadata.input_format, self.min_size, self.max_size)

    def run_network(self, net_input: np.ndarray) -> dict[str, np.ndarray]:
        """Detections at network resolution (Detectron2's ``do_postprocess=False`` outputs),
        checked (``check_outputs``): the boundary every caller's outputs pass through."""
        raw = self.backend.run({"image": net_input})
        check_outputs(raw, len(self.metadata.class_names))
        try:
            return resolve_ties(raw, self.metadata)
        except (IndexError, ValueError, KeyError) as exc:
            raise ModelError(f"model outputs for tie order are inconsistent: {exc}") from None

    def predict_compact(self, image_bgr: np.ndarray) -> CompactPrediction:
        net_input = self.preprocess(image_bgr)
        raw = self.run_network(net_input)
        return postprocess(raw, tuple(net_input.shape[2:]), tuple(image_bgr.shape[:2]),
                           self.metadata)

    def __call__(self, image_bgr: np.ndarray) -> Instances:
        return self.predict_compact(image_bgr).to_instances()


def open_backend(path: Path, name: str, options: BackendOptions, min_size: int | None,
                 max_size: int | None) -> Backend:
    """The engine ``name`` with the model loaded; ``auto``: the fastest installed one, timed on
    the network input of a 480x640 frame of noise at the Predictor's sizes."""
    if name != AUTO:
        return create_backend(name, path, options)

    def probe(backend: Backend) -> dict[str, np.ndarray]:
        meta = ModelMetadata.from_props(backend.metadata_props, str(path))
        frame = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
        return {"image": to_network_input(frame, meta.input_format,
                                          int(min_size or meta.min_size_test),
                                          int(max_size or meta.max_size_test))}

    return load_fastest(path, options, probe, f"min_size={min_size} max_size={max_size}")


# Graph outputs with one row per detection (the others are per image or per kept box).
PER_DETECTION = ("boxes", "scores", "classes", "mask_probs", "keypoint_heatmaps",
                 "objectness_logits")
TIE_OUTPUTS = ("kept_scores", "kept_rank", "num_candidates")


def resolve_ties(raw: dict[str, np.ndarray], meta: ModelMetadata) -> dict[str, np.ndarray]:
    """Keep DETECTIONS_PER_IMAGE rows in Detectron2's order of equal scores (see tie_order)."""
    if "kept_rank" not in raw:
        return raw
    rows = detectron2_rows(raw["kept_scores"], raw["kept_rank"], int(raw["num_candidates"][0]),
                           meta.detections_per_image)
    out = {k: v for k, v in raw.items() if k not in TIE_OUTPUTS}
    for name in PER_DETECTION:
        if name in out:
            out[name] = out[name][rows]
    return out


def postprocess(raw: dict[str, np.ndarray], net_hw: tuple[int, int], out_hw: tuple[int, int],
                meta: ModelMetadata) -> CompactPrediction:
    """``detector_postprocess``: rescale to ``out_hw``, clip, drop empty boxes; keypoints are
    decoded from their heatmaps at network scale first, as Detectron2 does."""
    boxes, keep = rescale_boxes(raw["boxes"], net_hw, out_hw)
    mask_probs = raw.get("mask_probs")
    logits = raw.get("objectness_logits")
    keypoints = None
    if "keypoint_heatmaps" in raw:
        decoded = heatmaps_to_keypoints(raw["keypoint_heatmaps"], raw["boxes"])
        keypoints = rescale_keypoints(decoded, net_hw, out_hw)[keep]
    panoptic = None
    if "sem_seg" in raw:
        panoptic = PanopticSettings.from_metadata(meta.panoptic)
    return CompactPrediction(
        image_size=out_hw,
        boxes=boxes[keep],
        scores=raw["scores"][keep],
        classes=raw["classes"][keep],
        mask_probs=None if mask_probs is None else mask_probs[keep],
        keypoints=keypoints,
        mask_threshold=meta.mask_threshold,
        sem_seg_logits=None if panoptic is None else raw["sem_seg"][0],
        net_hw=(int(net_hw[0]), int(net_hw[1])),
        panoptic=panoptic,
        objectness_logits=None if logits is None else logits[keep],
    )


def _check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise InputImageError(f"expected a uint8 image array, got {getattr(image, 'dtype', image)}")
    if image.ndim != 3 or image.shape[2] != 3 or min(image.shape[:2]) < 1:
        raise InputImageError(f"expected a (H, W, 3) BGR image, got shape {image.shape}")
