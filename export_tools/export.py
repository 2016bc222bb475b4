"""Detectron2 config + checkpoint -> a self-describing, standard-domain ONNX file."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import onnx

from d2common import __version__
from d2common.metadata import COCO_CLASSES, ModelMetadata
from d2common.onnx_files import has_external_data, model_files
from export_tools.config import Config
from export_tools.errors import ExportError
from export_tools.modeling.meta_arch import build_model_graph
from export_tools.modeling.weights import WeightStore
from export_tools.onnx_io import check_model, save_model, weight_bytes

log = logging.getLogger(__name__)

COCO_KEYPOINTS = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
    "right_knee", "left_ankle", "right_ankle",
)
COCO_SKELETON = (
    ("left_ear", "left_eye"), ("right_ear", "right_eye"), ("left_eye", "nose"),
    ("nose", "right_eye"), ("left_shoulder", "right_shoulder"), ("left_shoulder", "left_elbow"),
    ("right_shoulder", "right_elbow"), ("left_elbow", "left_wrist"),
    ("right_elbow", "right_wrist"), ("left_hip", "right_hip"), ("left_hip", "left_knee"),
    ("right_hip", "right_knee"), ("left_knee", "left_ankle"), ("right_knee", "right_ankle"),
    ("left_shoulder", "left_hip"), ("right_shoulder", "right_hip"),
)


#: the one class of a ProposalNetwork's proposals
PROPOSAL_CLASS = "object"


def num_thing_classes(cfg: Config) -> int:
    """Classes of the ``classes`` output (a SemanticSegmentor: its semantic labels)."""
    arch = cfg.MODEL.META_ARCHITECTURE
    if arch == "RetinaNet":
        return int(cfg.MODEL.RETINANET.NUM_CLASSES)
    if arch == "ProposalNetwork":
        return 1
    if arch == "SemanticSegmentor":
        return int(cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES)
    return int(cfg.MODEL.ROI_HEADS.NUM_CLASSES)


def resolve_class_names(cfg: Config, class_names: Sequence[str] | None) -> list[str]:
    """Given names, COCO's for an 80-class model, else ``class_0..``; the count must match."""
    k = num_thing_classes(cfg)
    if class_names:
        names = [str(n) for n in class_names]
        if len(names) != k:
            raise ExportError(f"--classes gives {len(names)} names but the model has {k} classes")
        return names
    if cfg.MODEL.META_ARCHITECTURE == "ProposalNetwork":
        return [PROPOSAL_CLASS]
    if k == len(COCO_CLASSES) and cfg.MODEL.META_ARCHITECTURE != "SemanticSegmentor":
        return list(COCO_CLASSES)
    return [f"class_{i}" for i in range(k)]


def build_metadata(cfg: Config, class_names: list[str], outputs: list[str], model_name: str,
                   keypoint_names: Sequence[str] | None = None,
                   stuff_classes: Sequence[str] | None = None,
                   keypoint_connections: Sequence[Sequence[str]] | None = None) -> ModelMetadata:
    arch = cfg.MODEL.META_ARCHITECTURE
    heads = cfg.MODEL.RETINANET if arch == "RetinaNet" else cfg.MODEL.ROI_HEADS
    kp_names, skeleton = _keypoint_names(cfg, keypoint_names)
    if keypoint_connections is not None and cfg.MODEL.KEYPOINT_ON:
        skeleton = _check_connections(keypoint_connections, kp_names)
    return ModelMetadata(
        model_name=model_name,
        meta_architecture=arch,
        class_names=class_names,
        input_format=cfg.INPUT.FORMAT,
        min_size_test=int(cfg.INPUT.MIN_SIZE_TEST),
        max_size_test=int(cfg.INPUT.MAX_SIZE_TEST),
        score_thresh=float(heads.SCORE_THRESH_TEST),
        nms_thresh=float(heads.NMS_THRESH_TEST),
        detections_per_image=int(cfg.TEST.DETECTIONS_PER_IMAGE),
        outputs=outputs,
        exporter_version=__version__,
        keypoint_names=kp_names,
        keypoint_connections=skeleton,
        stuff_classes=(class_names if arch == "SemanticSegmentor"
                       else _stuff_classes(cfg, stuff_classes)),
        panoptic=_panoptic_settings(cfg),
    )


def _keypoint_names(cfg: Config, names: Sequence[str] | None) -> tuple[list[str], list[list[str]]]:
    if not cfg.MODEL.KEYPOINT_ON:
        return [], []
    k = int(cfg.MODEL.ROI_KEYPOINT_HEAD.NUM_KEYPOINTS)
    if names:
        if len(names) != k:
            raise ExportError(f"--keypoints gives {len(names)} names but the model has {k}")
        return list(names), []
    if k == len(COCO_KEYPOINTS):
        return list(COCO_KEYPOINTS), [list(p) for p in COCO_SKELETON]
    return [f"keypoint_{i}" for i in range(k)], []


def _check_connections(pairs: Sequence[Sequence[str]], names: list[str]) -> list[list[str]]:
    """Skeleton lines as pairs of keypoint names, each name one of ``names``."""
    out = []
    for pair in pairs:
        if len(pair) != 2 or any(n not in names for n in pair):
            raise ExportError(f"--keypoint-connections: {'-'.join(pair)!r} is not a pair of "
                              f"keypoint names ({', '.join(names)})")
        out.append([str(pair[0]), str(pair[1])])
    return out


def _stuff_classes(cfg: Config, names: Sequence[str] | None) -> list[str]:
    """Names of the semantic head's labels (0 is Panoptic FPN's "things" class)."""
    if cfg.MODEL.META_ARCHITECTURE != "PanopticFPN":
        return list(names or [])
    k = int(cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES)
    if names:
        if len(names) != k:
            raise ExportError(f"--stuff-classes gives {len(names)} names but the semantic head "
                              f"has {k} classes (MODEL.SEM_SEG_HEAD.NUM_CLASSES, label 0 = "
                              "things)")
        return [str(n) for n in names]
    return ["things", *(f"stuff_{i}" for i in range(1, k))]


def _panoptic_settings(cfg: Config) -> dict:
    if cfg.MODEL.META_ARCHITECTURE == "SemanticSegmentor":
        return {"sem_seg_stride": int(cfg.MODEL.SEM_SEG_HEAD.COMMON_STRIDE)}
    if cfg.MODEL.META_ARCHITECTURE != "PanopticFPN":
        return {}
    c = cfg.MODEL.PANOPTIC_FPN.COMBINE
    return {"enabled": bool(c.ENABLED), "overlap_thresh": float(c.OVERLAP_THRESH),
            "stuff_area_limit": int(c.STUFF_AREA_LIMIT),
            "instances_confidence_thresh": float(c.INSTANCES_CONFIDENCE_THRESH),
            "sem_seg_stride": int(cfg.MODEL.SEM_SEG_HEAD.COMMON_STRIDE)}


def build_onnx(cfg: Config, state: Mapping[str, np.ndarray], *,
               class_names: Sequence[str] | None = None,
               model_name: str = "model", source: str = "checkpoint",
               keypoint_names: Sequence[str] | None = None,
               stuff_classes: Sequence[str] | None = None,
               keypoint_connections: Sequence[Sequence[str]] | None = None) -> onnx.ModelProto:
    """Build and check the ONNX model for a loaded config and state dict."""
    return build_onnx_from_weights(cfg, WeightStore(state, source=source), class_names=class_names,
                                   model_name=model_name, keypoint_names=keypoint_names,
                                   stuff_classes=stuff_classes,
                                   keypoint_connections=keypoint_connections)


def build_onnx_from_weights(cfg: Config, weights: WeightStore, *,
                            class_names: Sequence[str] | None = None, model_name: str = "model",
                            keypoint_names: Sequence[str] | None = None,
                            stuff_classes: Sequence[str] | None = None,
                            keypoint_connections: Sequence[Sequence[str]] | None = None,
                            ) -> onnx.ModelProto:
    """:func:`build_onnx` with any :class:`WeightStore` (e.g. synthetic weights for benchmarks)."""
    graph, _ = build_model_graph(cfg, weights, model_name)
    weights.finish()
    names = resolve_class_names(cfg, class_names)
    outputs = [o.name for o in graph.outputs]
    meta = build_metadata(cfg, names, outputs, model_name, keypoint_names, stuff_classes,
                          keypoint_connections)
    model = graph.build(meta.to_props(), doc=f"{model_name} exported by d2stream {__version__}")
    if not check_model(model):  # over 2 GiB: save_model checks the written files instead
        log.info("%s: %.2f GiB of weights, checked once written (external data)", model_name,
                 weight_bytes(model) / 2**30)
    return model


def export_model(config_file: str | os.PathLike, weights: str | os.PathLike,
                 output: str | os.PathLike, *, opts: Sequence[str] | None = None,
                 class_names: Sequence[str] | None = None, model_name: str | None = None,
                 keypoint_names: Sequence[str] | None = None,
                 stuff_classes: Sequence[str] | None = None,
                 keypoint_connections: Sequence[Sequence[str]] | None = None,
                 external_data: bool | None = None) -> Path:
    """Read ``config_file`` (+ ``opts``) and ``weights``; write the ONNX model to ``output``
    (``external_data``: see :func:`export_tools.onnx_io.save_model`)."""
    from export_tools.checkpoint import load_checkpoint
    from export_tools.config import load_config
    from export_tools.lazy import is_lazy_config, load_lazy_config
    from export_tools.modeling.supported import check_supported

    if is_lazy_config(config_file):  # LazyConfig: the checkpoint settles what the file cannot
        state, info = load_checkpoint(weights)
        cfg = load_lazy_config(config_file, state, list(opts or []))
        check_supported(cfg)  # the registries decide for LazyConfig models too
    else:
        cfg = load_config(config_file, opts)
        check_supported(cfg)
        state, info = load_checkpoint(weights)
    name = model_name or Path(config_file).parent.name or Path(config_file).stem
    model = build_onnx(cfg, state, class_names=class_names, model_name=name, source=str(weights),
                       keypoint_names=keypoint_names, stuff_classes=stuff_classes,
                       keypoint_connections=keypoint_connections)
    nodes = len(model.graph.node)
    out = save_model(model, output, external_data)
    size = sum(f.stat().st_size for f in model_files(out))
    log.info("wrote %s (%.1f MB%s, %d nodes)", out, size / 1e6,
             " with its external data" if has_external_data(out) else "", nodes)
    return out
