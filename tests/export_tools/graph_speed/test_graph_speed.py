"""What makes the exported graphs fast in ONNX Runtime, checked on the exported fixture models.

- Everything constant is already folded: ONNX Runtime's constant folding and arithmetic
  simplification (the basic optimisation level) find nothing left to remove.
- Batch norms are folded into the convolutions, and after ONNX Runtime's optimisation every
  ReLU is fused into the convolution before it.
- No shape is computed twice: no two Shape nodes read the same tensor and range.
- NMS is a single NonMaxSuppression node per stage (all classes at once), pooling uses RoiAlign.
"""

from __future__ import annotations

import collections

import onnx
import onnxruntime as ort
import pytest

MODELS = ("faster_rcnn_R_50_FPN", "mask_rcnn_R_50_FPN", "retinanet_R_50_FPN",
          "mask_rcnn_R_50_C4", "faster_rcnn_X_FPN_gn_rgb")


def _optimised(path, level, tmp_path) -> onnx.ModelProto:
    opts = ort.SessionOptions()
    opts.graph_optimization_level = level
    opts.optimized_model_filepath = str(tmp_path / "optimised.onnx")
    opts.log_severity_level = 3
    ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return onnx.load(opts.optimized_model_filepath)


@pytest.mark.parametrize("name", MODELS)
def test_nothing_left_for_constant_folding(name, exported, tmp_path):
    ours = onnx.load(str(exported(name)))
    basic = _optimised(exported(name), ort.GraphOptimizationLevel.ORT_ENABLE_BASIC, tmp_path)
    kept = {o for n in basic.graph.node for o in n.output}
    outputs = {o.name for o in ours.graph.output}
    feeds_output = {n.input[0] for n in ours.graph.node
                    if n.op_type == "Identity" and n.output[0] in outputs}
    removed = [f"{n.op_type} {n.name}" for n in ours.graph.node
               if not set(n.output) & kept and n.op_type != "Identity"
               and not set(n.output) & feeds_output]  # renamed to the graph output
    assert removed == [], f"ONNX Runtime still folds: {removed}"
    assert not any(n.op_type == "Constant" for n in ours.graph.node)


@pytest.mark.parametrize("name", MODELS)
def test_norms_folded_and_relus_fused(name, exported, tmp_path):
    ours = onnx.load(str(exported(name)))
    assert not {"BatchNormalization", "Dropout"} & {n.op_type for n in ours.graph.node}
    full = _optimised(exported(name), ort.GraphOptimizationLevel.ORT_ENABLE_ALL, tmp_path)
    producer = {o: n for n in full.graph.node for o in n.output}
    uses = collections.Counter(i for n in full.graph.node for i in n.input)
    # a ReLU can fuse into a convolution (not a ConvTranspose) whose output nothing else reads
    unfused = [n.name for n in full.graph.node if n.op_type == "Relu"
               and n.input[0] in producer and uses[n.input[0]] == 1
               and producer[n.input[0]].op_type in ("Conv", "FusedConv")]
    assert unfused == []
    fused = [n for n in full.graph.node if n.op_type == "Conv" and n.domain != ""]
    assert fused, "the NCHWc layout transformer did not run"


@pytest.mark.parametrize("name", MODELS)
def test_no_shape_computed_twice(name, exported):
    ours = onnx.load(str(exported(name)))
    keys = collections.Counter()
    for n in ours.graph.node:
        if n.op_type == "Shape":
            attrs = {a.name: a.i for a in n.attribute}
            keys[(n.input[0], attrs.get("start"), attrs.get("end"))] += 1
    assert [k for k, count in keys.items() if count > 1] == []


@pytest.mark.parametrize("name, nms, roi_align", [
    ("faster_rcnn_R_50_FPN", 2, 4), ("mask_rcnn_R_50_FPN", 2, 8), ("retinanet_R_50_FPN", 1, 0),
])
def test_nms_and_pooling_are_single_native_ops(name, nms, roi_align, exported):
    ops = collections.Counter(n.op_type for n in onnx.load(str(exported(name))).graph.node)
    assert ops["NonMaxSuppression"] == nms  # RPN + box head: all levels / classes at once
    assert ops["RoiAlign"] == roi_align  # one per FPN level and head
    assert ops["ScatterND"] == 0 and ops["Loop"] == 0
