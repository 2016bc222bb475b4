"""``model.backbone`` of a LazyConfig -> a plain spec for
:mod:`export_tools.modeling.backbone.lazy` (stored under the Config's ``LAZY.BACKBONE``)."""

from __future__ import annotations

import math
from typing import Any

from export_tools.lazy import targets as T
from export_tools.lazy.lambdas import SAME_NORMS, unread_lambda
from export_tools.lazy.markers import LambdaRef, NameRef, PartialValue
from export_tools.lazy.nodes import Node
from export_tools.modeling.backbone.regnet import regnet_stages
from export_tools.modeling.checks import FPN_NORMS
from export_tools.modeling.checks import NORMS as CNN_NORMS

RESNET_BLOCKS = {"detectron2.modeling.backbone.resnet.BottleneckBlock": "bottleneck",
                 "detectron2.modeling.backbone.resnet.BasicBlock": "basic"}
REGNET_BLOCKS = {"detectron2.modeling.backbone.regnet.ResBottleneckBlock": "res_bottleneck"}
REGNET_STEMS = {"detectron2.modeling.backbone.regnet.SimpleStem": "simple",
                "detectron2.modeling.backbone.regnet.ResStem": "res"}


def backbone_spec(node: Node) -> dict[str, Any]:
    kind = node.target(T.BACKBONES, "backbone")
    if kind == "FPN":
        return _fpn(node)
    return simple_feature_pyramid(node)


def _norm(node: Node, key: str, allowed: tuple[str, ...] = CNN_NORMS, default: str = "") -> str:
    """A ``get_norm`` argument: a name, or a ``.py`` lambda whose body is a norm (its name)."""
    value = node.get(key, default)
    if isinstance(value, LambdaRef):
        if not value.norm:
            why = value.refusal or "its body is not in a saved config (write the norm's name)"
            raise node.fail(unread_lambda(value, why), key)
        value = value.norm
    value = SAME_NORMS.get(value, value)
    if value not in allowed:
        raise node.fail(f"unsupported value {value!r}; supported: "
                        f"{', '.join(repr(n) for n in allowed)}", key)
    return value


def _marker(node: Node, key: str, table: dict[str, str]) -> str:
    value = node.require(key)
    name = value.name if isinstance(value, NameRef) else value
    if name not in table:
        raise node.fail(f"{name!r} is not supported; supported: {', '.join(table)}", key)
    return table[name]


def _fpn(node: Node) -> dict[str, Any]:
    node.only_keys(("bottom_up", "in_features", "out_channels", "norm", "top_block",
                    "fuse_type", "square_pad"))
    bottom = node.child("bottom_up")
    kind = bottom.target(T.BOTTOM_UPS, "FPN bottom-up network")
    parsers = {"ResNet": _resnet, "RegNet": _regnet, "MViT": _mvit, "SwinTransformer": _swin}
    if kind not in parsers:
        raise bottom.fail(f"{kind} under an FPN is not supported yet; supported: "
                          f"{', '.join(parsers)}", "_target_")
    up = parsers[kind](bottom)
    in_features = node.list("in_features")
    for name in in_features:
        if name not in up["strides"]:
            raise node.fail(f"{name!r} is not a feature of the bottom-up network "
                            f"({', '.join(up['strides'])})", "in_features")
    fuse = node.str("fuse_type", "sum")
    if fuse not in ("sum", "avg"):
        raise node.fail(f"unsupported value {fuse!r}; supported: 'sum', 'avg'", "fuse_type")
    return {"kind": "FPN", "bottom_up": up, "in_features": in_features,
            "out_channels": node.int("out_channels"), "norm": _norm(node, "norm", FPN_NORMS),
            "fuse_type": fuse, "top_block": _top_block(node, in_features, up),
            "size_divisibility": up["strides"][in_features[-1]],
            "square_pad": node.int("square_pad", 0)}


def _top_block(node: Node, in_features: list[str], up: dict[str, Any]) -> str:
    if node.get("top_block") is None:
        return ""
    top = node.child("top_block")
    kind = top.target(T.TOP_BLOCKS, "FPN top block")
    if kind == "LastLevelMaxPool":
        top.only_keys(())
        return "maxpool"
    top.only_keys(("in_channels", "out_channels", "in_feature"))
    top.equals("in_feature", "res5", "P6 is computed from res5")
    return "p6p7"


def _resnet(node: Node) -> dict[str, Any]:
    node.only_keys(("stem", "stages", "out_features", "freeze_at", "num_classes"))
    node.equals("num_classes", None, "a classifier head")
    stem = node.child("stem")
    if stem.target(T.RESNET_PARTS, "ResNet stem") != "BasicStem":
        raise stem.fail("supported: BasicStem", "_target_")
    stem.only_keys(("in_channels", "out_channels", "norm"))
    stages, strides, stride = [], {}, 4
    stage_nodes = _default_stages(node) if isinstance(node.get("stages"), dict) else [
        node.item("stages", i) for i in range(len(node.list("stages")))]
    for i, stage in enumerate(stage_nodes):
        stages.append(_resnet_stage(stage))
        stride *= stages[-1]["first_stride"]
        strides[f"res{i + 2}"] = stride
    norms = {_norm(stem, "norm", default="BN")} | {s["norm"] for s in stages}
    blocks = {s["block"] for s in stages}
    if len(norms) > 1 or len(blocks) > 1:
        raise node.fail(f"stages mix norms {sorted(norms)} or blocks {sorted(blocks)}; "
                        "supported: one of each", "stages")
    return {"kind": "ResNet", "stem_in": stem.int("in_channels", 3),
            "stem_out": stem.int("out_channels"), "norm": norms.pop(), "stages": stages,
            "block": blocks.pop(), "out_features": _out_features(node, strides),
            "strides": strides}


BLOCKS_PER_DEPTH = {18: [2, 2, 2, 2], 34: [3, 4, 6, 3], 50: [3, 4, 6, 3], 101: [3, 4, 23, 3],
                    152: [3, 8, 36, 3]}
BOTTLENECK = "detectron2.modeling.backbone.resnet.BottleneckBlock"
BASIC = "detectron2.modeling.backbone.resnet.BasicBlock"
MAKE_STAGE = "detectron2.modeling.ResNet.make_stage"


def _default_stages(node: Node) -> list[Node]:
    """``ResNet.make_default_stages(depth, block_class=None, **kwargs)`` expanded into the four
    ``ResNet.make_stage`` calls it makes."""
    spec = node.child("stages")
    if spec.target(T.RESNET_PARTS, "ResNet stages") != "make_default_stages":
        raise spec.fail("supported: a list of ResNet.make_stage, or "
                        "ResNet.make_default_stages", "_target_")
    depth = spec.int("depth")
    if depth not in BLOCKS_PER_DEPTH:
        raise spec.fail(f"{depth}: supported: {', '.join(map(str, BLOCKS_PER_DEPTH))}", "depth")
    kwargs = {k: v for k, v in spec.data.items() if k not in ("_target_", "depth", "block_class")}
    block = spec.get("block_class") or NameRef(BASIC if depth < 50 else BOTTLENECK)
    ins, outs = (([64, 64, 128, 256], [64, 128, 256, 512]) if depth < 50 else
                 ([64, 256, 512, 1024], [256, 512, 1024, 2048]))
    out = []
    for i, (n, s, c_in, c_out) in enumerate(zip(BLOCKS_PER_DEPTH[depth], [1, 2, 2, 2], ins,
                                                outs)):
        stage = {"_target_": MAKE_STAGE, "block_class": block, "num_blocks": n,
                 "stride_per_block": [s] + [1] * (n - 1), "in_channels": c_in,
                 "out_channels": c_out, **kwargs}
        if depth >= 50:
            stage["bottleneck_channels"] = c_out // 4
        out.append(Node(stage, spec.key(f"<stage {i}>"), spec.source))
    return out


def _resnet_stage(stage: Node) -> dict[str, Any]:
    if stage.target(T.RESNET_PARTS, "ResNet stage") != "make_stage":
        raise stage.fail("supported: ResNet.make_stage", "_target_")
    stage.only_keys(("block_class", "num_blocks", "in_channels", "out_channels",
                     "bottleneck_channels", "stride_per_block", "norm", "stride_in_1x1",
                     "num_groups", "dilation"))
    strides = stage.list("stride_per_block")
    if len(strides) != stage.int("num_blocks") or any(s != 1 for s in strides[1:]):
        raise stage.fail(f"{strides}: supported: one stride per block, only the first "
                         "block's may differ from 1", "stride_per_block")
    block = _marker(stage, "block_class", RESNET_BLOCKS)
    return {"block": block, "num_blocks": stage.int("num_blocks"),
            "in_channels": stage.int("in_channels"), "out_channels": stage.int("out_channels"),
            "bottleneck_channels": stage.int("bottleneck_channels", 0),
            "first_stride": strides[0], "dilation": stage.int("dilation", 1),
            "num_groups": stage.int("num_groups", 1),
            "stride_in_1x1": stage.bool("stride_in_1x1", False), "norm": _norm(stage, "norm")}


def _out_features(node: Node, strides: dict[str, int]) -> list[str]:
    names = node.list("out_features")
    for name in names:
        if name not in strides:
            raise node.fail(f"{name!r} is not a stage ({', '.join(strides)})", "out_features")
    return names


def _regnet(node: Node) -> dict[str, Any]:
    node.only_keys(("stem_class", "stem_width", "block_class", "depth", "w_a", "w_0", "w_m",
                    "group_width", "stride", "bottleneck_ratio", "se_ratio",
                    "activation_class", "freeze_at", "norm", "out_features"))
    node.equals("activation_class", None, "the default ReLU")
    _marker(node, "block_class", REGNET_BLOCKS)
    stem = _marker(node, "stem_class", REGNET_STEMS)
    stride = node.int("stride", 2)
    stages = regnet_stages(node.float("w_a"), node.int("w_0"), node.float("w_m"),
                           node.int("depth"), node.int("group_width"),
                           node.float("bottleneck_ratio", 1.0))
    strides, total = {}, 2 if stem == "simple" else 4
    for i in range(len(stages)):
        total *= stride
        strides[f"s{i + 1}"] = total
    if not all(math.log2(s).is_integer() for s in strides.values()):
        raise node.fail(f"stride {stride}: supported: a power of two", "stride")
    return {"kind": "RegNet", "stem": stem, "stem_width": node.int("stem_width"),
            "stages": stages, "stride": stride, "se_ratio": node.float("se_ratio", 0.0),
            "norm": _norm(node, "norm", default="BN"),
            "out_features": _out_features(node, strides), "strides": strides}


VIT_KEYS = ("img_size", "patch_size", "in_chans", "embed_dim", "depth", "num_heads", "mlp_ratio",
            "qkv_bias", "drop_path_rate", "norm_layer", "act_layer", "use_abs_pos",
            "use_rel_pos", "rel_pos_zero_init", "window_size", "window_block_indexes",
            "residual_block_indexes", "use_act_checkpoint", "pretrain_img_size",
            "pretrain_use_cls_token", "out_feature")
LAYER_NORMS = ("torch.nn.modules.normalization.LayerNorm", "torch.nn.LayerNorm")
GELUS = ("torch.nn.modules.activation.GELU", "torch.nn.GELU")


def layer_norm_eps(node: Node, key: str) -> float:
    """``norm_layer``: ``nn.LayerNorm`` or ``partial(nn.LayerNorm, eps=...)``."""
    value = node.get(key)
    if value is None:
        return 1e-5
    func, kwargs = value, {}
    if isinstance(value, PartialValue):
        func, kwargs = value.func, dict(value.kwargs)
        if value.args or set(kwargs) - {"eps"}:
            raise node.fail("supported: LayerNorm with at most eps set", key)
    if not isinstance(func, NameRef) or func.name not in LAYER_NORMS:
        raise node.fail(f"{func!r}: supported: torch.nn.LayerNorm", key)
    return float(kwargs.get("eps", 1e-5))


def _vit(net: Node) -> dict[str, Any]:
    net.only_keys(VIT_KEYS)
    net.equals("in_chans", 3, "colour images")
    net.equals("residual_block_indexes", [], "ViT residual conv blocks are not built yet")
    act = net.get("act_layer")
    if act is not None and not (isinstance(act, NameRef) and act.name in GELUS):
        raise net.fail(f"{act!r}: supported: torch.nn.GELU", "act_layer")
    depth = net.int("depth", 12)
    windows = [int(i) for i in net.list("window_block_indexes", [])]
    return {"kind": "ViT", "img_size": net.int("img_size", 1024),
            "patch_size": net.int("patch_size", 16), "embed_dim": net.int("embed_dim", 768),
            "depth": depth, "num_heads": net.int("num_heads", 12),
            "mlp_ratio": net.float("mlp_ratio", 4.0), "qkv_bias": net.bool("qkv_bias", True),
            "ln_eps": layer_norm_eps(net, "norm_layer"),
            "use_abs_pos": net.bool("use_abs_pos", True),
            "use_rel_pos": net.bool("use_rel_pos", False),
            "window_size": net.int("window_size", 0), "window_block_indexes": windows,
            "pretrain_img_size": net.int("pretrain_img_size", 224),
            "pretrain_use_cls_token": net.bool("pretrain_use_cls_token", True),
            "out_feature": net.str("out_feature", "last_feat")}


def simple_feature_pyramid(node: Node) -> dict[str, Any]:
    node.only_keys(("net", "in_feature", "out_channels", "scale_factors", "top_block", "norm",
                    "square_pad"))
    net = node.child("net")
    if net.target(T.BOTTOM_UPS, "SimpleFeaturePyramid network") != "ViT":
        raise net.fail("supported: ViT", "_target_")
    vit = _vit(net)
    if node.str("in_feature") != vit["out_feature"]:
        raise node.fail(f"must be the ViT's out_feature {vit['out_feature']!r}", "in_feature")
    square = node.int("square_pad", 0)
    if square <= 0 or square % vit["patch_size"]:
        raise node.fail(f"{square}: supported: a square size that is a multiple of the patch "
                        "size (the export has static shapes)", "square_pad")
    global_blocks = set(range(vit["depth"])) - set(vit["window_block_indexes"])
    if vit["use_rel_pos"] and global_blocks and square != vit["img_size"]:
        raise node.fail(f"{square} differs from the ViT's img_size {vit['img_size']}: global "
                        "attention's relative position tables would need resizing, which is "
                        "not built yet; supported: square_pad == img_size", "square_pad")
    scales = [float(s) for s in node.list("scale_factors")]
    if any(s not in (4.0, 2.0, 1.0, 0.5) for s in scales):
        raise node.fail(f"{scales}: supported: 4.0, 2.0, 1.0, 0.5", "scale_factors")
    strides = [int(vit["patch_size"] / s) for s in scales]
    top = ""
    if node.get("top_block") is not None:
        block = node.child("top_block")
        if block.target(T.TOP_BLOCKS, "top block") != "LastLevelMaxPool":
            raise block.fail("supported: LastLevelMaxPool", "_target_")
        top = "maxpool"
    return {"kind": "SimpleFeaturePyramid", "net": vit, "out_channels": node.int("out_channels"),
            "scale_factors": scales, "norm": _norm(node, "norm", FPN_NORMS, "LN"),
            "top_block": top, "size_divisibility": strides[-1], "square_pad": square}


MVIT_KEYS = ("img_size", "patch_kernel", "patch_stride", "patch_padding", "in_chans",
             "embed_dim", "depth", "num_heads", "last_block_indexes", "qkv_pool_kernel",
             "adaptive_kv_stride", "adaptive_window_size", "residual_pooling", "mlp_ratio",
             "qkv_bias", "drop_path_rate", "norm_layer", "act_layer", "use_abs_pos",
             "use_rel_pos", "rel_pos_zero_init", "use_act_checkpoint", "pretrain_img_size",
             "pretrain_use_cls_token", "out_features")


def _square(node: Node, key: str, default: int) -> int:
    value = node.get(key, [default, default])
    if not (isinstance(value, list) and len(value) == 2 and value[0] == value[1]
            and isinstance(value[0], int)):
        raise node.fail(f"{value!r}: supported: two equal integers", key)
    return value[0]


def _mvit(node: Node) -> dict[str, Any]:
    node.only_keys(MVIT_KEYS)
    node.equals("in_chans", 3, "colour images")
    node.equals("use_abs_pos", False, "MViTv2's absolute position embedding is not built yet")
    node.equals("qkv_pool_kernel", [3, 3], "the pooling kernel")
    act = node.get("act_layer")
    if act is not None and not (isinstance(act, NameRef) and act.name in GELUS):
        raise node.fail(f"{act!r}: supported: torch.nn.GELU", "act_layer")
    last = [int(i) for i in node.list("last_block_indexes", [0, 2, 11, 15])]
    depth = node.int("depth", 16)
    if len(last) != 4 or last != sorted(last) or last[-1] != depth - 1:
        raise node.fail(f"{last}: supported: four increasing stage ends, the last "
                        "block last", "last_block_indexes")
    stride = _square(node, "patch_stride", 4)
    strides = {f"scale{i + 2}": stride * 2**i for i in range(4)}
    return {"kind": "MViT", "img_size": node.int("img_size", 224),
            "patch_kernel": _square(node, "patch_kernel", 7), "patch_stride": stride,
            "patch_padding": _square(node, "patch_padding", 3),
            "embed_dim": node.int("embed_dim", 96), "depth": depth,
            "num_heads": node.int("num_heads", 1), "last_block_indexes": last,
            "adaptive_kv_stride": node.int("adaptive_kv_stride", 4),
            "adaptive_window_size": node.int("adaptive_window_size", 56),
            "residual_pooling": node.bool("residual_pooling", True),
            "mlp_ratio": node.float("mlp_ratio", 4.0), "qkv_bias": node.bool("qkv_bias", True),
            "ln_eps": layer_norm_eps(node, "norm_layer"),
            "use_rel_pos": node.bool("use_rel_pos", True),
            "out_features": _out_features(node, strides), "strides": strides}


SWIN_KEYS = ("pretrain_img_size", "patch_size", "in_chans", "embed_dim", "depths", "num_heads",
             "window_size", "mlp_ratio", "qkv_bias", "qk_scale", "drop_rate", "attn_drop_rate",
             "drop_path_rate", "norm_layer", "ape", "patch_norm", "out_indices", "frozen_stages",
             "use_checkpoint")


def _int_list(node: Node, key: str, default: list[int]) -> list[int]:
    value = node.list(key, default)
    if not value or any(isinstance(v, bool) or not isinstance(v, int) or v <= 0 for v in value):
        raise node.fail(f"{value!r}: supported: a list of positive integers", key)
    return value


def _swin(node: Node) -> dict[str, Any]:
    """``SwinTransformer``; dropout, drop path, frozen stages and checkpointing are training-only
    (no-ops at inference)."""
    node.only_keys(SWIN_KEYS)
    node.equals("in_chans", 3, "colour images")
    node.equals("ape", False, "Swin's absolute position embedding is not built yet")
    node.equals("patch_size", 4, "Detectron2 gives the outputs strides 4..32, true for patch 4")
    depths = _int_list(node, "depths", [2, 2, 6, 2])
    heads = _int_list(node, "num_heads", [3, 6, 12, 24])
    if len(heads) != len(depths):
        raise node.fail(f"{heads}: one head count per stage ({len(depths)} depths)", "num_heads")
    dim = node.int("embed_dim", 96)
    for i, h in enumerate(heads):
        if (dim * 2**i) % h:
            raise node.fail(f"stage {i}: {dim * 2**i} channels do not split into {h} heads",
                            "num_heads")
    indices = node.list("out_indices", [0, 1, 2, 3])
    if not indices or any(i not in range(len(depths)) for i in indices):
        raise node.fail(f"{indices!r}: supported: stage indices 0..{len(depths) - 1}",
                        "out_indices")
    qk_scale = node.get("qk_scale")
    return {"kind": "SwinTransformer", "patch_size": 4, "embed_dim": dim, "depths": depths,
            "num_heads": heads, "window_size": node.int("window_size", 7),
            "mlp_ratio": node.float("mlp_ratio", 4.0), "qkv_bias": node.bool("qkv_bias", True),
            "qk_scale": 0.0 if qk_scale is None else node.float("qk_scale"),
            "ln_eps": layer_norm_eps(node, "norm_layer"),
            "patch_norm": node.bool("patch_norm", True),
            "out_features": [f"p{i}" for i in indices],
            "strides": {f"p{i}": 2 ** (i + 2) for i in indices}}
