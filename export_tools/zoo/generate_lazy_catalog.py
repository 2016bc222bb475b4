"""Maintainer tool: the LazyConfig zoo entries (new baselines, ViTDet, MViTv2) from Detectron2.

Usage::

    python -m export_tools.zoo.generate_lazy_catalog D2_CHECKOUT \\
        > export_tools/zoo/catalog_lazy_data.py

For each model with published weights (``new_baselines/*`` in ``model_zoo.py``'s URL table; the
model tables of ``projects/ViTDet/README.md`` and ``projects/MViTv2/README.md``) it reads the
``.py`` config with our own reader (:mod:`export_tools.lazy.pyconfig`: parsed, never run), keeps
the sections inference needs (``model`` and ``dataloader.test.mapper``) and checks the tree with
the exporter's own translation: an entry it refuses keeps its reason (``refused``). A config
equal to an earlier one except for a few keys is stored as that ``base`` plus its ``changes``.
The output is plain data; the project never reads Detectron2 files at run time.
"""

from __future__ import annotations

import copy
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from export_tools.errors import ConfigError
from export_tools.lazy.markers import LambdaRef, NameRef, PartialValue, ShapeSpecValue
from export_tools.lazy.translate import lazy_tree_to_config, read_lazy_tree
from export_tools.modeling.meta_arch import build_model_graph
from export_tools.modeling.supported import check_supported
from export_tools.modeling.weights import GeneratedWeights
from export_tools.zoo.generate_catalog import parse_url_table
from export_tools.zoo.lazy_configs import flatten_tree, inference_tree

ZOO_URL = "https://dl.fbaipublicfiles.com/detectron2/"
PROJECTS = ("ViTDet", "MViTv2")
MAX_CHANGES = 40  # more differing keys than this: the config is stored whole


class _ShapeOnly(GeneratedWeights):
    """Every weight the graph asks for, as one zero broadcast to its shape (no memory): the graph
    is built only to check that it builds."""

    def __init__(self) -> None:
        super().__init__(source="shapes only")

    def _make(self, name: str, dims: tuple[int, ...]) -> np.ndarray:
        return np.broadcast_to(np.float32(0.0), dims)


def refusal(tree: dict[str, Any]) -> str | None:
    """Why the exporter refuses ``tree`` (one line naming the key), or None when it builds it:
    the graph is built with shape-only weights. (Models over 2 GiB, ViT-H and MViTv2-H, are
    written with external data: not a refusal.)"""
    try:
        # no checkpoint: the lambda norms (LSJ, MViTv2 heads) are read from their bodies
        cfg = lazy_tree_to_config(copy.deepcopy(tree), {}, "")
        check_supported(cfg)
    except ConfigError as exc:
        return str(exc)
    build_model_graph(cfg, _ShapeOnly(), "check")
    return None


def readme_models(readme: Path, project: str) -> Iterator[tuple[str, str]]:
    """``(config path under the project, weight path under the zoo URL)`` per table row."""
    for row in readme.read_text().split("<tr>")[1:]:
        config = re.search(r'href="(configs/[\w/.\-]+\.py)"', row)
        weights = re.search(re.escape(ZOO_URL) + r'([\w/.\-]+\.pkl)"', row)
        if config and weights and weights.group(1).startswith(f"{project}/"):
            yield config.group(1), weights.group(1)


def model_sources(d2_root: Path) -> Iterator[tuple[str, Path, str, str | None]]:
    """``(zoo name, config file, weights, url_dir)`` for every LazyConfig model with weights."""
    urls = parse_url_table(d2_root / "detectron2/model_zoo/model_zoo.py")
    for name, weights in urls.items():
        if name.startswith("new_baselines/"):
            yield name, d2_root / "configs" / f"{name}.py", weights, None
    for project in PROJECTS:
        folder = d2_root / "projects" / project
        for config, url_path in readme_models(folder / "README.md", project):
            url_dir, model_id, file_name = url_path.rsplit("/", 2)
            name = f"{project}/{config.removeprefix('configs/').removesuffix('.py')}"
            yield name, folder / config, f"{model_id}/{file_name}", url_dir


def dataset_of(name: str) -> str:
    return "lvis_v1" if "/LVIS/" in name else "coco"


def _changes(base: dict[str, Any], tree: dict[str, Any]) -> dict[str, Any] | None:
    """The flat keys where ``tree`` differs from ``base``; None when a key of ``base`` is gone."""
    flat_base, flat = flatten_tree(base), flatten_tree(tree)
    if set(flat_base) - set(flat):
        return None
    return {k: v for k, v in flat.items() if k not in flat_base or flat_base[k] != v}


def generate(d2_root: Path) -> str:
    """Python source of ``catalog_lazy_data.py``."""
    configs: dict[str, dict[str, Any]] = {}
    trees: dict[str, dict[str, Any]] = {}
    entries: dict[str, dict[str, Any]] = {}
    reasons: dict[str, str | None] = {}
    for name, path, weights, url_dir in model_sources(d2_root):
        tree = inference_tree(read_lazy_tree(path))
        key = next((k for k, t in trees.items() if t == tree), None)
        if key is None:
            key = name
            configs[key] = _stored(tree, trees)
            trees[key] = tree
        entry: dict[str, Any] = {"weights": weights, "dataset": dataset_of(name),
                                 "lazy_config": key}
        if url_dir is not None:
            entry["url_dir"] = url_dir
        if key not in reasons:
            reasons[key] = refusal(tree)
        reason = reasons[key]
        if reason is not None:
            entry["refused"] = reason
        entries[name] = entry
    return render(configs, entries)


def _stored(tree: dict[str, Any], trees: dict[str, dict[str, Any]]) -> dict[str, Any]:
    best: tuple[str, dict[str, Any]] | None = None
    for key, other in trees.items():
        changes = _changes(other, tree)
        if changes is not None and len(changes) <= MAX_CHANGES and \
                (best is None or len(changes) < len(best[1])):
            best = (key, changes)
    return {"base": best[0], "changes": best[1]} if best else {"tree": tree}


HEADER = '''"""LazyConfig model-zoo entries, as data (generated by generate_lazy_catalog.py).

``CONFIGS``: each LazyConfig tree the entries use (``model`` and ``dataloader.test.mapper``, as
Detectron2's ``.py`` config describes them, read by our own reader), stored whole (``tree``) or as
an earlier config (``base``) plus the flat keys that differ (``changes``). ``ENTRIES``: the weight
file (model id / file name under the zoo URL, or under ``url_dir`` when the URL's folder is not the
entry's name), the dataset, the config and, for an architecture the exporter does not build, why.
"""

from __future__ import annotations

from typing import Any

from export_tools.lazy.markers import LambdaRef, NameRef, PartialValue, ShapeSpecValue

'''


def render(configs: dict[str, dict[str, Any]], entries: dict[str, dict[str, Any]]) -> str:
    lines = [HEADER.rstrip("\n"), "", "CONFIGS: dict[str, dict[str, Any]] = {"]
    for key, stored in configs.items():
        lines += _item(json.dumps(key), stored, 4)
    lines += ["}", "", "ENTRIES: dict[str, dict[str, Any]] = {"]
    for name, entry in entries.items():
        lines += _item(json.dumps(name), entry, 4)
    lines += ["}", ""]
    return "\n".join(lines)


def _item(key: str, value: Any, indent: int) -> list[str]:
    return _lines(f"{key}: ", value, indent)


def _lines(prefix: str, value: Any, indent: int, width: int = 100) -> list[str]:
    """``prefix value,`` at ``indent``, on one line when it fits, else one item per line."""
    pad = " " * indent
    line = f"{pad}{prefix}{literal(value)},"
    if len(line) <= width or not value:
        return [line]
    if isinstance(value, str):
        return [f"{pad}{prefix}(", *_filled(_words(value), indent + 4, width, " "), f"{pad}),"]
    if isinstance(value, list) and not any(isinstance(v, (dict, list)) for v in value):
        items = [literal(v) + "," for v in value]
        return [f"{pad}{prefix}[", *_filled(items, indent + 4, width, " "), f"{pad}],"]
    call = _call(value)
    if call is not None:
        out = [f"{pad}{prefix}{call[0]}("]
        for arg in call[1]:
            out += _lines("", arg, indent + 4, width)
        return [*out, f"{pad}),"]
    if not isinstance(value, (dict, list)):
        return [line]
    if isinstance(value, dict):
        out = [f"{pad}{prefix}{{"]
        for k, v in value.items():
            out += _lines(f"{json.dumps(k)}: ", v, indent + 4, width)
        return [*out, f"{pad}}},"]
    out = [f"{pad}{prefix}["]
    for v in value:
        out += _lines("", v, indent + 4, width)
    return [*out, f"{pad}],"]


def _call(value: Any) -> tuple[str, list[Any]] | None:
    """A marker as its constructor's name and arguments."""
    if isinstance(value, NameRef):
        return "NameRef", [value.name]
    if isinstance(value, LambdaRef):
        args = [value.name, value.norm, value.refusal]
        while args[-1] == "":
            args.pop()
        return "LambdaRef", args
    if isinstance(value, ShapeSpecValue):
        return "ShapeSpecValue", [value.fields]
    if isinstance(value, PartialValue):
        return "PartialValue", [value.func, value.args, value.kwargs]
    return None


def _words(text: str) -> list[str]:
    """``text`` as string literals of one word each (with its trailing space), to be filled."""
    parts = re.findall(r"\S+\s*", text)
    return [json.dumps(part) for part in parts]


def _filled(items: list[str], indent: int, width: int, sep: str) -> list[str]:
    """``items`` packed into lines of at most ``width`` (string pieces are merged per line)."""
    lines: list[list[str]] = [[]]
    for item in items:
        trial = " " * indent + sep.join([*lines[-1], item])
        if lines[-1] and len(_merge(trial)) > width:
            lines.append([])
        lines[-1].append(item)
    return [_merge(" " * indent + sep.join(line)) for line in lines]


def _merge(line: str) -> str:
    """Adjacent string literals on one line become one: ``"a " "b"`` -> ``"a b"``."""
    return re.sub(r'(?<!\\)" "', "", line) if line.lstrip().startswith('"') else line


def literal(value: Any) -> str:
    """Python source for a tree value (markers as their constructors)."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool) or value is None or isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)}: {literal(v)}" for k, v in value.items()) + "}"
    call = _call(value)
    if call is not None:
        return f"{call[0]}({', '.join(literal(v) for v in call[1])})"
    raise TypeError(f"cannot write {type(value).__name__} as data")


if __name__ == "__main__":
    sys.stdout.write(generate(Path(sys.argv[1])))
