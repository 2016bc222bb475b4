"""Maintainer tool: derive the zoo catalog facts from a Detectron2 source checkout.

Usage::

    python -m export_tools.zoo.generate_catalog D2_CHECKOUT > export_tools/zoo/catalog_data.py

It reads the model-zoo YAML files (resolving ``_BASE_`` chains), the defaults in
``detectron2/config/defaults.py`` (parsed as data with :mod:`ast`, never imported) and the URL
table in ``detectron2/model_zoo/model_zoo.py``, and writes for each supported entry only the
inference-relevant keys whose values differ from the defaults. The output is plain data; the
project never reads Detectron2 files at run time.
"""

from __future__ import annotations

import ast
import json
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

# Entries whose architectures the exporter supports, with the dataset their classes come from.
SUPPORTED: dict[str, str] = {
    **{
        f"COCO-Detection/faster_rcnn_{arch}": "coco"
        for arch in (
            "R_50_C4_1x", "R_50_DC5_1x", "R_50_FPN_1x", "R_50_C4_3x", "R_50_DC5_3x",
            "R_50_FPN_3x", "R_101_C4_3x", "R_101_DC5_3x", "R_101_FPN_3x", "X_101_32x8d_FPN_3x",
        )
    },
    **{
        f"COCO-Detection/retinanet_{arch}": "coco"
        for arch in ("R_50_FPN_1x", "R_50_FPN_3x", "R_101_FPN_3x")
    },
    **{
        f"COCO-InstanceSegmentation/mask_rcnn_{arch}": "coco"
        for arch in (
            "R_50_C4_1x", "R_50_DC5_1x", "R_50_FPN_1x", "R_50_C4_3x", "R_50_DC5_3x",
            "R_50_FPN_3x", "R_101_C4_3x", "R_101_DC5_3x", "R_101_FPN_3x", "X_101_32x8d_FPN_3x",
        )
    },
    **{
        f"COCO-Keypoints/keypoint_rcnn_{arch}": "coco_person"
        for arch in ("R_50_FPN_1x", "R_50_FPN_3x", "R_101_FPN_3x", "X_101_32x8d_FPN_3x")
    },
    **{
        f"COCO-PanopticSegmentation/panoptic_fpn_{arch}": "coco_panoptic"
        for arch in ("R_50_1x", "R_50_3x", "R_101_3x")
    },
    **{
        f"LVISv0.5-InstanceSegmentation/mask_rcnn_{arch}": "lvis_v0.5"
        for arch in ("R_50_FPN_1x", "R_101_FPN_1x", "X_101_32x8d_FPN_1x")
    },
    "Cityscapes/mask_rcnn_R_50_FPN": "cityscapes",
    "PascalVOC-Detection/faster_rcnn_R_50_C4": "voc",
    "Misc/cascade_mask_rcnn_R_50_FPN_1x": "coco",
    "Misc/cascade_mask_rcnn_R_50_FPN_3x": "coco",
    "Misc/mask_rcnn_R_50_FPN_3x_gn": "coco",
    "Misc/scratch_mask_rcnn_R_50_FPN_3x_gn": "coco",
    "Misc/scratch_mask_rcnn_R_50_FPN_9x_gn": "coco",
    "Misc/mask_rcnn_R_50_FPN_3x_syncbn": "coco",
    "Misc/scratch_mask_rcnn_R_50_FPN_9x_syncbn": "coco",
    "Detectron1-Comparisons/faster_rcnn_R_50_FPN_noaug_1x": "coco",
    "Detectron1-Comparisons/mask_rcnn_R_50_FPN_noaug_1x": "coco",
    "Detectron1-Comparisons/keypoint_rcnn_R_50_FPN_1x": "coco_person",
}

# Keys that only matter for training or bookkeeping; everything else that differs is kept.
_DROPPED_SECTIONS = {"DATASETS", "DATALOADER", "SOLVER", "VERSION", "_BASE_", "GLOBAL"}
_DROPPED_PREFIXES = ("MODEL.WEIGHTS", "MODEL.DEVICE", "TEST.EVAL_PERIOD", "TEST.PRECISE_BN")


def _safe_eval(node: ast.AST, env: dict[str, Any]) -> Any:
    """Evaluate a tiny arithmetic / list-comprehension expression (the RetinaNet anchor sizes)."""
    if isinstance(node, ast.Expression):
        return _safe_eval(node.body, env)
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return env[node.id]
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_safe_eval(e, env) for e in node.elts]
    if isinstance(node, ast.BinOp):
        ops = {ast.Mult: lambda a, b: a * b, ast.Div: lambda a, b: a / b,
               ast.Pow: lambda a, b: a**b, ast.Add: lambda a, b: a + b}
        return ops[type(node.op)](_safe_eval(node.left, env), _safe_eval(node.right, env))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and len(node.args) == 1:
        funcs = {"tuple": list, "list": list, "range": lambda n: list(range(n))}
        return funcs[node.func.id](_safe_eval(node.args[0], env))
    if isinstance(node, (ast.ListComp, ast.GeneratorExp)) and len(node.generators) == 1:
        gen = node.generators[0]
        assert isinstance(gen.target, ast.Name)
        return [
            _safe_eval(node.elt, {**env, gen.target.id: v}) for v in _safe_eval(gen.iter, env)
        ]
    raise ValueError(f"unsupported expression: {ast.dump(node)}")


class _Loader(yaml.SafeLoader):
    """SafeLoader that evaluates ``!!python/object/apply:eval`` as plain arithmetic."""


def _apply_eval(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    (expr,) = loader.construct_sequence(node)  # type: ignore[arg-type]
    return _safe_eval(ast.parse(expr, mode="eval"), {})


_Loader.add_constructor("tag:yaml.org,2002:python/object/apply:eval", _apply_eval)


def _normalise(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_normalise(v) for v in value]
    if isinstance(value, str) and re.fullmatch(r"\(.*\)", value.strip()):
        # yacs reads strings such as "(800,)" as tuples.
        return _normalise(list(ast.literal_eval(value)))
    return value


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, path + "."))
        else:
            flat[path] = _normalise(value)
    return flat


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def load_yaml_chain(path: Path) -> dict[str, Any]:
    """Load a zoo YAML with its ``_BASE_`` files merged in (later files win)."""
    data = yaml.load(path.read_text(), Loader=_Loader) or {}  # noqa: S506 - custom safe loader
    base = data.pop("_BASE_", None)
    if base is None:
        return data
    return _merge(load_yaml_chain((path.parent / base).resolve()), data)


def parse_defaults(defaults_py: Path) -> dict[str, Any]:
    """Flat ``{"MODEL.RPN.NMS_THRESH": 0.7, ...}`` from ``_C.X.Y = literal`` assignments."""
    flat: dict[str, Any] = {}
    for node in ast.parse(defaults_py.read_text()).body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1):
            continue
        target = ast.unparse(node.targets[0])
        if not target.startswith("_C."):
            continue
        value = node.value
        if isinstance(value, ast.Call) and ast.unparse(value.func) == "CN":
            for k, v in (ast.literal_eval(value.args[0]) if value.args else {}).items():
                flat[f"{target[3:]}.{k}"] = _normalise(v)
            continue
        try:
            literal = ast.literal_eval(value)
        except ValueError:
            literal = _safe_eval(value, {})
        flat[target[3:]] = _normalise(literal)
    return flat


def parse_url_table(model_zoo_py: Path) -> dict[str, str]:
    """``{"COCO-Detection/faster_rcnn_R_50_FPN_3x": "137849458/model_final_280758.pkl"}``."""
    pairs = re.findall(r'"([\w.\-/]+)":\s*"(\d+/model_[\w]+\.pkl)"', model_zoo_py.read_text())
    return dict(pairs)


def _kept(key: str) -> bool:
    section = key.split(".", 1)[0]
    if section in _DROPPED_SECTIONS or key.startswith(_DROPPED_PREFIXES):
        return False
    return not (section == "INPUT" and ("TRAIN" in key or key.startswith("INPUT.CROP")))


def entry_overrides(yaml_path: Path, defaults: dict[str, Any]) -> dict[str, Any]:
    """The inference-relevant keys of one zoo config that differ from the defaults."""
    flat = _flatten(load_yaml_chain(yaml_path))
    return {k: v for k, v in sorted(flat.items()) if _kept(k) and defaults.get(k) != v}


def generate(d2_root: Path, names: Mapping[str, str] = SUPPORTED) -> str:
    """Python source of ``catalog_data.py`` for ``names`` (zoo name -> dataset key)."""
    defaults = parse_defaults(d2_root / "detectron2/config/defaults.py")
    urls = parse_url_table(d2_root / "detectron2/model_zoo/model_zoo.py")
    entries: dict[str, dict[str, Any]] = {}
    for name, dataset in names.items():
        overrides = entry_overrides(d2_root / "configs" / f"{name}.yaml", defaults)
        unknown = sorted(k for k in overrides if k not in defaults)
        if unknown:
            raise SystemExit(f"{name}: keys not in defaults: {unknown}")
        entries[name] = {"weights": urls[name], "dataset": dataset, "overrides": overrides}
    lines = [
        '"""Official Detectron2 model-zoo entries, as data (generated by generate_catalog.py).',
        "",
        "For each entry: the weight file (model id / file name under the zoo URL), the dataset its",
        "classes come from, and the flat config keys whose values differ from Detectron2's",
        'defaults for inference.',
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "from typing import Any",
        "",
        "ENTRIES: dict[str, dict[str, Any]] = {",
    ]
    for name, entry in entries.items():
        lines += [f"    {_literal(name)}: {{", f'        "weights": {_literal(entry["weights"])},']
        lines += [f'        "dataset": {_literal(entry["dataset"])},', '        "overrides": {']
        for key, value in entry["overrides"].items():
            lines += _wrapped(f"            {_literal(key)}: ", value)
        lines += ["        },", "    },"]
    return "\n".join([*lines, "}", ""])


def _literal(value: Any) -> str:
    """A Python literal with double-quoted strings."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    return repr(value)


def _wrapped(prefix: str, value: Any, width: int = 100) -> list[str]:
    line = f"{prefix}{_literal(value)},"
    if len(line) <= width or not isinstance(value, list):
        return [line]
    indent = " " * (len(prefix) - len(prefix.lstrip()) + 4)
    out = [f"{prefix}["]
    for item in value:
        out += _wrapped(indent, item, width)
    return [*out, f"{indent[:-4]}],"]


if __name__ == "__main__":
    sys.stdout.write(generate(Path(sys.argv[1])))
