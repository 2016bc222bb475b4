"""``model.roi_heads`` of a LazyConfig -> Detectron2's ROI_HEADS / ROI_BOX_HEAD / ROI_MASK_HEAD."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from export_tools.lazy import targets as T
from export_tools.lazy.lambdas import SAME_NORMS, unread_lambda
from export_tools.lazy.markers import LambdaRef
from export_tools.lazy.nodes import Node

# get_norm's names -> the exporter's (``naiveSyncBN_N`` is naiveSyncBN with stats_mode "N", the
# same layer in inference)
CONV_NORMS = {n: SAME_NORMS.get(n, n) for n in ("", "BN", "SyncBN", "naiveSyncBN", "naiveSyncBN_N",
                                                "nnSyncBN", "FrozenBN", "GN", "LN")}
ROI_HEADS_KEYS = ("num_classes", "batch_size_per_image", "positive_fraction", "proposal_matcher",
                  "box_in_features", "box_pooler", "box_head", "box_predictor",
                  "mask_in_features", "mask_pooler", "mask_head", "proposal_append_gt",
                  "train_on_pred_boxes")


CASCADE_KEYS = ("box_heads", "box_predictors", "proposal_matchers")


def roi_heads_overrides(node: Node, state: Mapping[str, np.ndarray]) -> dict[str, Any]:
    kind = node.target(T.ROI_HEADS, "ROI heads")
    cascade = kind == "CascadeROIHeads"
    node.only_keys(ROI_HEADS_KEYS + CASCADE_KEYS if cascade else ROI_HEADS_KEYS)
    in_features = node.list("box_in_features")
    pooler = _pooler(node.child("box_pooler"))
    if cascade:
        head, predictor, stages = _cascade(node, state)
    else:
        head = _box_head(node.child("box_head"), state, "roi_heads.box_head")
        predictor, stages = _predictor(node.child("box_predictor")), {}
    out: dict[str, Any] = {
        "MODEL": {
            "MASK_ON": node.has("mask_head"),
            "ROI_HEADS": {"NAME": kind, "NUM_CLASSES": node.int("num_classes"),
                          "IN_FEATURES": in_features, **predictor.pop("ROI_HEADS")},
            "ROI_BOX_HEAD": {**pooler, **head, **predictor.pop("ROI_BOX_HEAD")},
            **stages,
        },
        "TEST": predictor.pop("TEST"),
    }
    if node.has("mask_head"):
        if node.list("mask_in_features") != in_features:
            raise node.fail(f"differs from box_in_features {in_features}; supported: the same "
                            "features for boxes and masks", "mask_in_features")
        mask = _mask_head(node.child("mask_head"), state)
        out["MODEL"]["ROI_MASK_HEAD"] = {**_pooler(node.child("mask_pooler")), **mask}
    return out


def _cascade(node: Node, state: Mapping[str, np.ndarray]) -> tuple[dict, dict, dict]:
    """``CascadeROIHeads``: one box head and predictor per stage, the same but for the box
    weights; inference uses the last predictor's thresholds, as Detectron2 does."""
    n = len(node.list("box_heads"))
    if n == 0 or len(node.list("box_predictors")) != n:
        raise node.fail(f"needs as many box_predictors as box_heads ({n})", "box_predictors")
    heads = [_box_head(node.item("box_heads", i), state, f"roi_heads.box_head.{i}")
             for i in range(n)]
    predictors = [_predictor(node.item("box_predictors", i)) for i in range(n)]
    if any(h != heads[0] for h in heads):
        raise node.fail("stages with different box heads; supported: one head design",
                        "box_heads")
    weights = [p["ROI_BOX_HEAD"].pop("BBOX_REG_WEIGHTS") for p in predictors]
    if not predictors[-1]["ROI_BOX_HEAD"]["CLS_AGNOSTIC_BBOX_REG"]:
        raise node.fail("CascadeROIHeads needs cls_agnostic_bbox_reg: true, as in Detectron2",
                        f"box_predictors.{n - 1}.cls_agnostic_bbox_reg")
    ious = [0.5 + 0.1 * i for i in range(n)]  # training only; the count is what matters
    stages = {"ROI_BOX_CASCADE_HEAD": {"BBOX_REG_WEIGHTS": weights, "IOUS": ious}}
    return heads[0], predictors[-1], stages


def _pooler(node: Node) -> dict[str, Any]:
    node.target(T.POOLERS, "ROI pooler")
    node.only_keys(("output_size", "scales", "sampling_ratio", "pooler_type",
                    "canonical_box_size", "canonical_level"))
    node.equals("canonical_box_size", 224, "the level-assignment rule")
    node.equals("canonical_level", 4, "the level-assignment rule")
    kind = node.str("pooler_type")
    if kind not in ("ROIAlignV2", "ROIAlign"):
        raise node.fail(f"unsupported value {kind!r}; supported: 'ROIAlignV2', 'ROIAlign'",
                        "pooler_type")
    return {"POOLER_RESOLUTION": node.int("output_size"),
            "POOLER_SAMPLING_RATIO": node.int("sampling_ratio"), "POOLER_TYPE": kind}


def _same_dims(node: Node, key: str, dims: list[Any]) -> int:
    if any(d != dims[0] for d in dims) or not all(isinstance(d, int) for d in dims):
        raise node.fail(f"{dims}: supported: one channel count for every layer", key)
    return dims[0] if dims else 0


def conv_norm(node: Node, state: Mapping[str, np.ndarray], first_norm: str) -> str:
    """The norm of a head's convs; a lambda's from its body, else from the checkpoint.

    A ``.py`` config's lambda was read (:mod:`export_tools.lazy.lambdas`): the norm its body
    makes, or refused. A saved YAML's lambda has lost its body: ``first_norm`` is the module path
    of the first conv's norm (e.g. ``roi_heads.box_head.conv1.norm``), and running statistics
    there mean a batch norm, which is what Detectron2's LSJ and MViTv2 configs'
    ``lambda c: NaiveSyncBatchNorm(c, ...)`` makes.
    """
    value = node.get("conv_norm", "")
    if isinstance(value, LambdaRef):
        return _lambda_norm(node, value, state, first_norm)
    if not isinstance(value, str) or value not in CONV_NORMS:
        raise node.fail(f"unsupported value {value!r}; supported: "
                        f"{', '.join(repr(n) for n in CONV_NORMS)}", "conv_norm")
    return CONV_NORMS[value]


def _lambda_norm(node: Node, value: LambdaRef, state: Mapping[str, np.ndarray],
                 first_norm: str) -> str:
    if value.norm:  # the lambda's body, read from a .py config
        if value.norm not in CONV_NORMS:
            raise node.fail(f"is a lambda ({value.name}) making a {value.norm!r} norm; "
                            f"supported: {', '.join(repr(n) for n in CONV_NORMS)}", "conv_norm")
        return CONV_NORMS[value.norm]
    if value.refusal:
        raise node.fail(unread_lambda(value, value.refusal), "conv_norm")
    if f"{first_norm}.running_mean" in state and f"{first_norm}.running_var" in state:
        return "BN"
    raise node.fail(f"is a lambda ({value.name}) and the checkpoint holds no batch-norm "
                    f"statistics at {first_norm}: the kind of norm it makes cannot be told "
                    "(write the norm's name, e.g. 'SyncBN' or 'LN', in the config)",
                    "conv_norm")


def _box_head(node: Node, state: Mapping[str, np.ndarray], prefix: str) -> dict[str, Any]:
    node.target(T.BOX_HEADS, "box head")
    node.only_keys(("input_shape", "conv_dims", "fc_dims", "conv_norm"))
    convs, fcs = node.list("conv_dims"), node.list("fc_dims")
    norm = conv_norm(node, state, f"{prefix}.conv1.norm") if convs else ""
    return {"NAME": "FastRCNNConvFCHead", "NUM_CONV": len(convs),
            "CONV_DIM": _same_dims(node, "conv_dims", convs) or 256, "NUM_FC": len(fcs),
            "FC_DIM": _same_dims(node, "fc_dims", fcs) or 1024, "NORM": norm}


def _predictor(node: Node) -> dict[str, Any]:
    node.target(T.BOX_PREDICTORS, "box predictor")
    node.only_keys(("input_shape", "box2box_transform", "num_classes", "test_score_thresh",
                    "test_nms_thresh", "test_topk_per_image", "cls_agnostic_bbox_reg",
                    "smooth_l1_beta", "box_reg_loss_type", "loss_weight", "use_sigmoid_ce",
                    "use_fed_loss", "get_fed_loss_cls_weights", "fed_loss_num_classes"))
    box = node.child("box2box_transform")
    box.target(T.BOX_TRANSFORMS, "box transform")
    return {
        "ROI_HEADS": {"SCORE_THRESH_TEST": node.float("test_score_thresh", 0.0),
                      "NMS_THRESH_TEST": node.float("test_nms_thresh", 0.5)},
        "ROI_BOX_HEAD": {"BBOX_REG_WEIGHTS": [float(v) for v in box.list("weights")],
                         "CLS_AGNOSTIC_BBOX_REG": node.bool("cls_agnostic_bbox_reg", False),
                         "USE_SIGMOID_CE": node.bool("use_sigmoid_ce", False)},
        "TEST": {"DETECTIONS_PER_IMAGE": node.int("test_topk_per_image", 100)},
    }


def _mask_head(node: Node, state: Mapping[str, np.ndarray]) -> dict[str, Any]:
    node.target(T.MASK_HEADS, "mask head")
    node.only_keys(("input_shape", "num_classes", "conv_dims", "conv_norm", "cls_agnostic_mask",
                    "loss_weight", "vis_period"))
    dims = node.list("conv_dims")
    if not dims:
        raise node.fail("must list at least the deconvolution's channels", "conv_dims")
    norm = conv_norm(node, state, "roi_heads.mask_head.mask_fcn1.norm") if len(dims) > 1 else ""
    return {"NAME": "MaskRCNNConvUpsampleHead", "NUM_CONV": len(dims) - 1,
            "CONV_DIM": _same_dims(node, "conv_dims", dims), "NORM": norm,
            "CLS_AGNOSTIC_MASK": node.bool("cls_agnostic_mask", False)}
