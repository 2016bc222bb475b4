"""Class and keypoint names of the datasets the official zoo models were trained on.

These are facts of the public datasets (COCO 2017 instances and person keypoints, COCO panoptic
stuff categories, Cityscapes, Pascal VOC), in the contiguous order the zoo models predict them.
LVIS has 1230 (v0.5) or 1203 (v1) classes and no names are bundled: its models export with
numbered classes.
"""

from __future__ import annotations

from dataclasses import dataclass

COCO_THINGS: tuple[str, ...] = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich",
    "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote",
    "keyboard", "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book",
    "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush",
)  # fmt: skip

# Semantic classes of the panoptic models: index 0 stands for "any thing", then 53 stuff classes.
COCO_PANOPTIC_STUFF: tuple[str, ...] = (
    "things", "banner", "blanket", "bridge", "cardboard", "counter", "curtain", "door-stuff",
    "floor-wood", "flower", "fruit", "gravel", "house", "light", "mirror-stuff", "net", "pillow",
    "platform", "playingfield", "railroad", "river", "road", "roof", "sand", "sea", "shelf",
    "snow", "stairs", "tent", "towel", "wall-brick", "wall-stone", "wall-tile", "wall-wood",
    "water", "window-blind", "window", "tree", "fence", "ceiling", "sky", "cabinet", "table",
    "floor", "pavement", "mountain", "grass", "dirt", "paper", "food", "building", "rock",
    "wall", "rug",
)  # fmt: skip

COCO_PERSON_KEYPOINTS: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip

CITYSCAPES_THINGS: tuple[str, ...] = (
    "person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle",
)  # fmt: skip

VOC_CLASSES: tuple[str, ...] = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)  # fmt: skip


@dataclass(frozen=True)
class DatasetInfo:
    """Names a zoo model's outputs refer to; ``None`` where the names are not bundled."""

    thing_classes: tuple[str, ...] | None
    stuff_classes: tuple[str, ...] | None = None
    keypoint_names: tuple[str, ...] | None = None


DATASETS: dict[str, DatasetInfo] = {
    "coco": DatasetInfo(COCO_THINGS),
    "coco_person": DatasetInfo(("person",), keypoint_names=COCO_PERSON_KEYPOINTS),
    "coco_panoptic": DatasetInfo(COCO_THINGS, stuff_classes=COCO_PANOPTIC_STUFF),
    "lvis_v0.5": DatasetInfo(None),
    "lvis_v1": DatasetInfo(None),
    "cityscapes": DatasetInfo(CITYSCAPES_THINGS),
    "voc": DatasetInfo(VOC_CLASSES),
}
