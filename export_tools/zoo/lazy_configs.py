"""The LazyConfig trees of the zoo's LazyConfig entries, rebuilt from :mod:`catalog_lazy_data`.

A stored config is a whole ``tree`` or a ``base`` config plus ``changes``: flat dotted keys
(``model.backbone.bottom_up.stages.depth``; list items of lists of configs by index,
``model.roi_heads.box_heads.0.conv_dims``) with their new values.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any


def flatten_tree(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}, "l": [{"c": 2}]}`` -> ``{"a.b": 1, "l.0.c": 2}`` (other lists are
    values)."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten_tree(value, path + "."))
        elif isinstance(value, list) and value and any(isinstance(v, Mapping) for v in value):
            flat.update(flatten_tree({str(i): v for i, v in enumerate(value)}, path + "."))
        else:
            flat[path] = value
    return flat


def apply_changes(tree: dict[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``tree`` with each flat key of ``changes`` set (new keys are added)."""
    out = copy.deepcopy(tree)
    for key, value in changes.items():
        node: Any = out
        *parents, leaf = key.split(".")
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
        if isinstance(node, list):
            node[int(leaf)] = copy.deepcopy(value)
        else:
            node[leaf] = copy.deepcopy(value)
    return out


def config_tree(key: str, configs: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The tree of stored config ``key`` (a fresh copy)."""
    stored = configs[key]
    if "tree" in stored:
        return copy.deepcopy(dict(stored["tree"]))
    return apply_changes(config_tree(stored["base"], configs), stored["changes"])


def inference_tree(tree: Mapping[str, Any]) -> dict[str, Any]:
    """The parts of a LazyConfig tree the exporter reads: ``model``, ``dataloader.test.mapper``
    (the training sections are dropped)."""
    mapper = tree.get("dataloader", {}).get("test", {}).get("mapper")
    return copy.deepcopy({"model": tree.get("model"), "dataloader": {"test": {"mapper": mapper}}})
