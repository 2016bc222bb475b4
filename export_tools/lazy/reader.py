"""Safe reading of a LazyConfig ``config.yaml``: YAML with a few Python tags, as data.

``yaml.SafeLoader`` extended only for the tags ``LazyConfig.save`` writes for Detectron2's models:
``!!python/name:`` (allow-listed names and lambdas, mapped to markers), ``!!python/object:`` for
``ShapeSpec``, ``!!python/object/apply:functools.partial`` and ``!!python/tuple``. Any other tag
becomes a :class:`Refused` marker, reported with its key path. Omegaconf interpolations
(``${.x}``, ``${..x}``, ``${a.b}``) are then resolved by :mod:`export_tools.lazy.interpolate`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import yaml

from export_tools.errors import ConfigError
from export_tools.lazy.interpolate import resolve_interpolations
from export_tools.lazy.markers import (
    ALLOWED_NAMES,
    LAMBDA_SUFFIX,
    PARTIAL_NAMES,
    SHAPE_SPEC_NAMES,
    LambdaRef,
    NameRef,
    PartialValue,
    Refused,
    ShapeSpecValue,
)

MAX_FILE_BYTES = 4 * 1024 * 1024
PY = "tag:yaml.org,2002:python/"


class _LazyLoader(yaml.SafeLoader):
    """SafeLoader plus inert constructors for the tags LazyConfig files use."""


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _name(loader: _LazyLoader, suffix: str, node: yaml.Node) -> Any:
    name = unquote(suffix)
    if name in ALLOWED_NAMES:
        return NameRef(name)
    if name.endswith(LAMBDA_SUFFIX):
        return LambdaRef(name)
    return Refused(f"!!python/name:{name}", _line(node))


def _object(loader: _LazyLoader, suffix: str, node: yaml.Node) -> Any:
    if suffix in SHAPE_SPEC_NAMES and isinstance(node, yaml.MappingNode):
        return ShapeSpecValue(loader.construct_mapping(node, deep=True))
    return Refused(f"!!python/object:{suffix}", _line(node))


def _apply(loader: _LazyLoader, suffix: str, node: yaml.Node) -> Any:
    if suffix not in PARTIAL_NAMES:
        return Refused(f"!!python/object/apply:{suffix}", _line(node))
    if isinstance(node, yaml.SequenceNode):
        args = loader.construct_sequence(node, deep=True)
        return PartialValue(args[0] if args else None, list(args[1:]), {})
    if not isinstance(node, yaml.MappingNode):
        return Refused(f"!!python/object/apply:{suffix}", _line(node))
    spec = loader.construct_mapping(node, deep=True)
    args = list(spec.get("args") or [])
    state = spec.get("state")
    kwargs = dict(spec.get("kwargs") or {})
    if isinstance(state, list) and len(state) >= 3:  # (func, args, kwargs, dict) as pickled
        args = [state[0], *list(state[1] or [])]
        kwargs.update(state[2] or {})
    return PartialValue(args[0] if args else None, args[1:], kwargs)


def _tuple(loader: _LazyLoader, node: yaml.Node) -> Any:
    return loader.construct_sequence(node, deep=True)


def _other(loader: _LazyLoader, suffix: str, node: yaml.Node) -> Any:
    return Refused(f"!!python/{suffix}", _line(node))


def _unknown(loader: _LazyLoader, node: yaml.Node) -> Any:
    return Refused(str(node.tag), _line(node))


_LazyLoader.add_constructor(PY + "tuple", _tuple)
_LazyLoader.add_multi_constructor(PY + "name:", _name)
_LazyLoader.add_multi_constructor(PY + "object/apply:", _apply)
_LazyLoader.add_multi_constructor(PY + "object:", _object)
_LazyLoader.add_multi_constructor(PY, _other)
_LazyLoader.add_constructor(None, _unknown)


def _read_text(path: Path) -> str:
    if path.name.endswith(".pkl"):
        raise ConfigError("LazyConfig pickles are never read (they can run code); give the "
                          "config.yaml beside it", file=str(path))
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ConfigError(f"file is {size} bytes, more than {MAX_FILE_BYTES}", file=str(path))
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config: {exc}", file=str(path)) from None


def parse_lazy_yaml(text: str, source: str) -> dict[str, Any]:
    """The YAML tree with markers for Python tags; raises ConfigError on malformed YAML or any
    tag outside the allowlist (naming the tag, its key path and line)."""
    try:
        tree = yaml.load(text, Loader=_LazyLoader)  # noqa: S506 - SafeLoader subclass, inert tags
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {' '.join(str(exc).split())}", file=source) from None
    if not isinstance(tree, dict):
        raise ConfigError("a LazyConfig file must be a mapping with a 'model' section",
                          file=source)
    refuse_tags(tree, "", source)
    return tree


def refuse_tags(node: Any, path: str, source: str) -> None:
    """Raise ConfigError for the first :class:`Refused` marker, by tag and key path."""
    if isinstance(node, Refused):
        raise ConfigError(f"{node.tag} (line {node.line}) is not allowed: only Detectron2 names "
                          "on the exporter's allowlist, lambdas, ShapeSpec and functools.partial "
                          "are read (as data)", key=path or "<root>", file=source)
    if isinstance(node, dict):
        for k, v in node.items():
            refuse_tags(v, f"{path}.{k}" if path else str(k), source)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            refuse_tags(v, f"{path}.{i}", source)
    elif isinstance(node, ShapeSpecValue):
        refuse_tags(node.fields, path, source)
    elif isinstance(node, PartialValue):
        refuse_tags([node.func, *node.args], path, source)
        refuse_tags(node.kwargs, path, source)


def read_lazy_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a LazyConfig ``config.yaml``; markers for Python tags, interpolations resolved."""
    path = Path(path)
    tree = parse_lazy_yaml(_read_text(path), str(path))
    return resolve_interpolations(tree, str(path))


def is_lazy_config(path: str | os.PathLike[str]) -> bool:
    """True for a LazyConfig file: a ``.py`` config, or YAML whose ``model`` has a ``_target_``."""
    path = Path(path)
    if path.suffix in (".py", ".pkl"):  # a .pkl goes here to be refused, unread
        return True
    try:
        with path.open(encoding="utf-8", errors="replace") as fh:
            head = fh.read(MAX_FILE_BYTES)
    except OSError:
        return False
    return "_target_:" in head and any(line.startswith("model:") for line in head.splitlines())
