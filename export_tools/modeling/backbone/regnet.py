"""RegNetX / RegNetY (Detectron2 ``backbone.regnet.RegNet``): stages from the (w_a, w_0, w_m, d)
parameters, ``ResBottleneckBlock`` (grouped 3x3, optional squeeze-and-excitation for Y)."""

from __future__ import annotations

import math

import numpy as np

from export_tools.graph import GraphBuilder, Tensor
from export_tools.modeling.backbone.base import Feature
from export_tools.modeling.layers import conv2d, max_pool
from export_tools.modeling.weights import WeightStore

QUANTUM = 8


def regnet_stages(w_a: float, w_0: int, w_m: float, depth: int, group_width: int,
                  bottleneck_ratio: float) -> list[dict[str, int | float]]:
    """Per stage: ``depth`` (blocks), ``width``, ``group_width``, ``bottleneck_ratio``, as
    Detectron2's ``generate_regnet_parameters`` + ``adjust_block_compatibility`` compute them."""
    if not (w_a >= 0 and w_0 > 0 and w_m > 1 and w_0 % QUANTUM == 0):
        raise ValueError(f"RegNet parameters w_a={w_a}, w_0={w_0}, w_m={w_m} are invalid")
    ws_cont = np.arange(depth) * w_a + w_0
    ks = np.round(np.log(ws_cont / w_0) / np.log(w_m))
    ws_all = np.round(np.divide(w_0 * np.power(w_m, ks), QUANTUM)).astype(int) * QUANTUM
    ws, ds = np.unique(ws_all, return_counts=True)
    stages = []
    for w, d in zip(ws.tolist(), ds.tolist()):
        b = bottleneck_ratio
        v = int(max(1, w * b))
        g = int(min(group_width, v))
        m = int(np.lcm(g, int(b))) if b > 1 else g
        v = max(m, int(round(v / m) * m))
        stages.append({"depth": int(d), "width": int(v / b), "group_width": g,
                       "bottleneck_ratio": b})
    return stages


def _stem(g: GraphBuilder, w: WeightStore, x: Tensor, prefix: str, spec: dict) -> Feature:
    width, norm = spec["stem_width"], spec["norm"]
    with g.scope("stem"):
        if spec["stem"] == "simple":
            y = conv2d(g, w, x, f"{prefix}.stem.conv", 3, width, 3, stride=2, padding=1,
                       norm=norm, relu=True, norm_prefix=f"{prefix}.stem.bn")
            return Feature(y, width, 2)
        y = conv2d(g, w, x, f"{prefix}.stem.conv", 3, width, 7, stride=2, padding=3, norm=norm,
                   relu=True, norm_prefix=f"{prefix}.stem.bn")
        return Feature(max_pool(g, y, 3, 2, 1), width, 4)


def _squeeze_excite(g: GraphBuilder, w: WeightStore, x: Tensor, prefix: str, ch: int,
                    se_ch: int) -> Tensor:
    # ReduceMean, not GlobalAveragePool: ONNX Runtime's x86 layout pass (ORT_ENABLE_ALL) turns
    # GlobalAveragePool into its NCHWc form, which put a RegNetY's boxes 0.017 px from the exact
    # answer (0.004 px with ReduceMean, which it leaves alone; docs/lazyconfig.md).
    pooled = g.op("ReduceMean", [x], axes=[2, 3], keepdims=1, hint="se_pool")
    y = conv2d(g, w, pooled, f"{prefix}.f_ex.0", ch, se_ch, 1, relu=True)
    y = g.op("Sigmoid", [conv2d(g, w, y, f"{prefix}.f_ex.2", se_ch, ch, 1)], hint="se_gate")
    return g.op("Mul", [x, y], hint="se")


def _block(g: GraphBuilder, w: WeightStore, x: Tensor, prefix: str, w_in: int, w_out: int,
           stride: int, stage: dict, spec: dict) -> Tensor:
    norm = spec["norm"]
    if w_in != w_out or stride != 1:
        short = conv2d(g, w, x, f"{prefix}.proj", w_in, w_out, 1, stride=stride, norm=norm,
                       norm_prefix=f"{prefix}.bn")
    else:
        short = x
    f = f"{prefix}.f"
    w_b = int(round(w_out * stage["bottleneck_ratio"]))
    w_se = int(round(w_in * spec["se_ratio"]))
    groups = w_b // stage["group_width"]
    y = conv2d(g, w, x, f"{f}.a", w_in, w_b, 1, norm=norm, relu=True, norm_prefix=f"{f}.a_bn")
    y = conv2d(g, w, y, f"{f}.b", w_b, w_b, 3, stride=stride, padding=1, groups=groups,
               norm=norm, relu=True, norm_prefix=f"{f}.b_bn")
    if w_se:
        y = _squeeze_excite(g, w, y, f"{f}.se", w_b, w_se)
    y = conv2d(g, w, y, f"{f}.c", w_b, w_out, 1, norm=norm, norm_prefix=f"{f}.c_bn")
    return g.op("Relu", [g.op("Add", [short, y], hint="residual")], hint="relu")


def build_regnet(g: GraphBuilder, w: WeightStore, image: Tensor, prefix: str,
                 spec: dict) -> dict[str, Feature]:
    """Stem and the stages up to the last of ``spec["out_features"]``; returns those."""
    feat = _stem(g, w, image, prefix, spec)
    names = [f"s{i + 1}" for i in range(len(spec["stages"]))]
    last = max(names.index(n) for n in spec["out_features"])
    feats: dict[str, Feature] = {}
    w_in, stride_total = spec["stem_width"], feat.stride
    y = feat.tensor
    for name, stage in zip(names[: last + 1], spec["stages"]):
        stride_total *= spec["stride"]
        with g.scope(name):
            for i in range(stage["depth"]):
                y = _block(g, w, y, f"{prefix}.{name}.b{i + 1}", w_in, stage["width"],
                           spec["stride"] if i == 0 else 1, stage, spec)
                w_in = stage["width"]
        feats[name] = Feature(y, w_in, stride_total)
    assert all(math.log2(f.stride).is_integer() for f in feats.values())
    return {n: feats[n] for n in spec["out_features"]}
