"""The self-description stored in an exported model's ``metadata_props``.

The exporter writes it and the runtime reads it, so the device needs only the ``.onnx`` file.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError

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
        """Panoptic FPN: semantic logits and instance masks to combine."""
        return "sem_seg" in self.outputs and "mask_probs" in self.outputs

    @property
    def has_sem_seg(self) -> bool:
        """Semantic logits (a SemanticSegmentor, or the semantic half of Panoptic FPN)."""
        return "sem_seg" in self.outputs

    @property
    def has_proposals(self) -> bool:
        """A ProposalNetwork: the detections are RPN proposals with objectness logits."""
        return "objectness_logits" in self.outputs

    def to_props(self) -> dict[str, str]:
        return {METADATA_KEY: json.dumps(asdict(self), sort_keys=True)}

    @classmethod
    def from_props(cls, props: dict[str, str], source: str) -> ModelMetadata:
        """Parse and validate ``metadata_props``; ``source`` names the file in errors."""
        if METADATA_KEY not in props:
            raise ModelError(f"{source}: not a d2stream model (no '{METADATA_KEY}' metadata); "
                             "export it with `d2stream export`")
        try:
            data = json.loads(props[METADATA_KEY])
        except (ValueError, RecursionError) as exc:
            raise ModelError(f"{source}: unreadable d2stream metadata (not JSON: "
                             f"{str(exc)[:120]})") from None
        if not isinstance(data, dict):
            raise ModelError(f"{source}: d2stream metadata is a JSON {type(data).__name__}, "
                             "not an object")
        version = data.get("format_version", 0)
        if isinstance(version, int) and version > FORMAT_VERSION:
            raise ModelError(f"{source}: model format {version} is newer than this d2stream "
                             f"supports ({FORMAT_VERSION}); upgrade d2stream")
        try:
            checked = MetadataSchema.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "metadata"
            raise ModelError(f"{source}: invalid d2stream metadata: {where}: {first['msg']} "
                             f"({exc.error_count()} problem(s))") from None
        return cls(**checked.model_dump())


Name = Annotated[StrictStr, Field(max_length=256)]
Size = Annotated[int, Field(ge=1, le=100_000)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
KNOWN_OUTPUTS = ("boxes", "scores", "classes", "mask_probs", "keypoint_heatmaps", "keypoints",
                 "sem_seg", "objectness_logits", "kept_scores", "kept_rank", "num_candidates")


class MetadataSchema(BaseModel):
    """The one validation of a model's metadata; unknown keys (newer exporters) are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    model_name: Name
    meta_architecture: Name
    class_names: list[Name] = Field(max_length=100_000)
    input_format: Literal["BGR", "RGB"]
    min_size_test: Size
    max_size_test: Size
    score_thresh: Fraction
    nms_thresh: Fraction
    detections_per_image: Size
    outputs: list[Literal[KNOWN_OUTPUTS]] = Field(min_length=1)  # type: ignore[valid-type]
    exporter_version: Name
    mask_threshold: Fraction = 0.5
    keypoint_names: list[Name] = Field(default_factory=list, max_length=10_000)
    keypoint_connections: list[Annotated[list[Name], Field(min_length=2, max_length=2)]] = \
        Field(default_factory=list)
    stuff_classes: list[Name] = Field(default_factory=list, max_length=100_000)
    panoptic: dict[Name, float | int | bool | str | None] = Field(default_factory=dict)
    quantization: dict[Name, Any] = Field(default_factory=dict)
    format_version: int = FORMAT_VERSION
