"""The model's outputs, checked once where they leave the inference backend.

Everything downstream (post-processing, events, drawing, the live view) trusts these shapes and
class indices; a model file that produces something else fails the frame with one ``ModelError``
line naming the output, instead of an ``IndexError`` deep inside the drawing code.
"""

from __future__ import annotations

import numpy as np

from d2common.errors import ModelError

# output -> (number of dimensions, whether dimension 0 is the detection count)
_LAYOUT = {"scores": 1, "classes": 1, "mask_probs": 3, "keypoint_heatmaps": 4,
           "objectness_logits": 1}


def _fail(name: str, problem: str) -> ModelError:
    return ModelError(f"model output {name!r}: {problem}")


def check_outputs(raw: dict[str, np.ndarray], num_classes: int) -> None:
    """ModelError unless ``raw`` holds consistent per-detection outputs and valid classes."""
    for name in ("boxes", "scores", "classes"):
        if name not in raw:
            raise _fail(name, "missing")
    boxes = raw["boxes"]
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise _fail("boxes", f"shape {boxes.shape}, expected (N, 4)")
    count = boxes.shape[0]
    for name, ndim in _LAYOUT.items():
        value = raw.get(name)
        if value is not None and (value.ndim != ndim or value.shape[0] != count):
            raise _fail(name, f"shape {value.shape} does not have {ndim} dimensions with "
                              f"{count} detections first (boxes has {count})")
    for name in ("boxes", "scores"):
        if not np.isfinite(raw[name]).all():
            raise _fail(name, "holds NaN or infinite values")
    classes = raw["classes"]
    if not np.issubdtype(classes.dtype, np.integer):
        raise _fail("classes", f"dtype {classes.dtype}, expected integers")
    if count and (classes.min() < 0 or classes.max() >= max(num_classes, 1)):
        raise _fail("classes", f"class index {int(classes.min())}..{int(classes.max())} outside "
                               f"0..{num_classes - 1} (the model's class_names)")
    sem_seg = raw.get("sem_seg")
    if sem_seg is not None and (sem_seg.ndim != 4 or sem_seg.shape[0] != 1):
        raise _fail("sem_seg", f"shape {sem_seg.shape}, expected (1, C, h, w)")
