"""The self-description stored in an exported model's ``metadata_props``.

The exporter writes it and the runtime reads it, so the device needs only the ``.onnx`` file.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from d2common.errors import ModelError

METADATA_KEY = "d2stream"
FORMAT_VERSION = 1

COCO_CLASSES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange",
    "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant",
    "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush",
)


@dataclass(frozen=True)
class ModelMetadata:
    """What the runtime needs to pre- and post-process for an exported model."""

    model_name: str
    meta_architecture: str
    class_names: list[str]
    input_format: str  # "BGR" or "RGB": channel order of the graph input
    min_size_test: int
    max_size_test: int
    score_thresh: float
    nms_thresh: float
    detections_per_image: int
    outputs: list[str]
    exporter_version: str
    mask_threshold: float = 0.5
    keypoint_names: list[str] = field(default_factory=list)
    keypoint_connections: list[list[str]] = field(default_factory=list)
    stuff_classes: list[str] = field(default_factory=list)
    panoptic: dict[str, Any] = field(default_factory=dict)
    # how the model was quantised (``{"precision": "int8", ...}``); empty for float models
    quantization: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    @property
    def has_masks(self) -> bool:
        return "mask_probs" in self.outputs

    @property
    def has_keypoints(self) -> bool:
        return "keypoint_heatmaps" in self.outputs or "keypoints" in self.outputs

    @property
    def has_panoptic(self) -> bool:
        return "sem_seg" in self.outputs

    def to_props(self) -> dict[str, str]:
        return {METADATA_KEY: json.dumps(asdict(self), sort_keys=True)}

    @classmethod
    def from_props(cls, props: dict[str, str], source: str) -> ModelMetadata:
        """Parse ``metadata_props``; ``source`` names the file in errors."""
        if METADATA_KEY not in props:
            raise ModelError(f"{source}: not a d2stream model (no '{METADATA_KEY}' metadata); "
                             "export it with `d2stream export`")
        try:
            data = json.loads(props[METADATA_KEY])
            if int(data.get("format_version", 0)) > FORMAT_VERSION:
                raise ModelError(f"{source}: model format {data['format_version']} is newer than "
                                 f"this d2stream supports ({FORMAT_VERSION}); upgrade d2stream")
            known = {f for f in cls.__dataclass_fields__}
            return cls(**{k: v for k, v in data.items() if k in known})
        except (ValueError, TypeError) as exc:
            raise ModelError(f"{source}: unreadable d2stream metadata ({exc})") from exc
