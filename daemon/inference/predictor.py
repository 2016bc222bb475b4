"""``Predictor``: an exported ``.onnx`` model as a function from a BGR image to ``Instances``.

The graph works at network resolution; this module does what ``DefaultPredictor`` does around the
model: ResizeShortestEdge before, ``detector_postprocess`` (and mask pasting) after.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from daemon.errors import InputImageError, ModelError
from daemon.inference.backends import DEFAULT_BACKEND, BackendOptions, create_backend
from daemon.inference.backends.ort_backend import session_options
from daemon.inference.instances import Instances
from daemon.inference.masks import paste_masks
from daemon.inference.metadata import ModelMetadata
from daemon.inference.transforms import rescale_boxes, to_network_input

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CompactPrediction:
    """Model outputs at the original image resolution, before masks are pasted.

    Arrays: ``boxes (N, 4)`` xyxy, ``scores (N,)``, ``classes (N,)`` int64,
    ``mask_probs (N, M, M)``, ``keypoints (N, K, 3)``. Small enough to pass between processes.
    """

    image_size: tuple[int, int]
    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray
    mask_probs: np.ndarray | None = None
    keypoints: np.ndarray | None = None
    mask_threshold: float = 0.5

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    def to_instances(self, paste: bool = True) -> Instances:
        """Full ``Instances``; masks pasted into the image when ``paste``."""
        masks = None
        if paste and self.mask_probs is not None:
            masks = paste_masks(self.mask_probs, self.boxes, self.image_size, self.mask_threshold)
        return Instances(self.image_size, self.boxes, self.scores, self.classes, pred_masks=masks,
                         pred_keypoints=self.keypoints, mask_probs=self.mask_probs)


__all__ = ["CompactPrediction", "Predictor", "postprocess", "session_options"]


class Predictor:
    """Loads the model once; call it with BGR ``(H, W, 3)`` uint8 images.

    Args:
        model_path: an ``.onnx`` file written by ``d2stream export``.
        num_threads: inference threads (None: the backend's default, one per core).
        min_size / max_size: override the export's INPUT.MIN_SIZE_TEST / MAX_SIZE_TEST.
        backend: ``onnxruntime`` (default) or ``openvino`` (see :mod:`daemon.inference.backends`).
        optimized_cache: ONNX Runtime: folder caching the optimised graph (faster cold start).
    """

    def __init__(self, model_path: str | os.PathLike, num_threads: int | None = None,
                 min_size: int | None = None, max_size: int | None = None,
                 backend: str = DEFAULT_BACKEND, optimized_cache: str | None = None) -> None:
        path = Path(model_path)
        if not path.is_file():
            raise ModelError(f"model file not found: {path}")
        self.backend = create_backend(backend, path, BackendOptions(num_threads, optimized_cache))
        self.metadata = ModelMetadata.from_props(self.backend.metadata_props, str(path))
        self.path = path
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
        """Raw graph outputs at network resolution."""
        return self.backend.run({"image": net_input})

    def predict_compact(self, image_bgr: np.ndarray) -> CompactPrediction:
        net_input = self.preprocess(image_bgr)
        raw = self.run_network(net_input)
        return postprocess(raw, tuple(net_input.shape[2:]), tuple(image_bgr.shape[:2]),
                           self.metadata)

    def __call__(self, image_bgr: np.ndarray) -> Instances:
        return self.predict_compact(image_bgr).to_instances()


def postprocess(raw: dict[str, np.ndarray], net_hw: tuple[int, int], out_hw: tuple[int, int],
                meta: ModelMetadata) -> CompactPrediction:
    """``detector_postprocess``: rescale to ``out_hw``, clip, drop empty boxes."""
    boxes, keep = rescale_boxes(raw["boxes"], net_hw, out_hw)
    mask_probs = raw.get("mask_probs")
    return CompactPrediction(
        image_size=out_hw,
        boxes=boxes[keep],
        scores=raw["scores"][keep],
        classes=raw["classes"][keep],
        mask_probs=None if mask_probs is None else mask_probs[keep],
        mask_threshold=meta.mask_threshold,
    )


def _check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise InputImageError(f"expected a uint8 image array, got {getattr(image, 'dtype', image)}")
    if image.ndim != 3 or image.shape[2] != 3 or min(image.shape[:2]) < 1:
        raise InputImageError(f"expected a (H, W, 3) BGR image, got shape {image.shape}")
