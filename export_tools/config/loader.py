"""Loading a Detectron2 YAML config file (with its ``_BASE_`` chain) onto the defaults.

Steps: read each file with ``yaml.safe_load`` (plus the zoo's one arithmetic ``eval`` tag);
follow ``_BASE_`` (a path relative to the file naming it, or a list of them) recursively,
refusing cycles; check every file's keys and values against the defaults (errors name the file
that holds the bad key); merge base-first, then the child, onto the defaults; apply ``--opts``
style overrides last.
"""

from __future__ import annotations

import copy
import logging
import os
from pathlib import Path
from typing import Any

import yaml

from export_tools.config.defaults import DEFAULTS
from export_tools.config.merge import check_overrides, deep_merge
from export_tools.config.node import Config
from export_tools.config.yaml_tags import load_yaml, resolve_eval_tags
from export_tools.errors import ConfigError

logger = logging.getLogger(__name__)

BASE_KEY = "_BASE_"
MAX_FILE_BYTES = 4 * 1024 * 1024
OPTS_SOURCE = "--opts"


def load_config(path: str | os.PathLike[str], opts: list[str] | None = None) -> Config:
    """Load a Detectron2 config file onto Detectron2's defaults and apply ``opts`` overrides.

    ``opts`` is a flat list ``[KEY, VALUE, KEY, VALUE, ...]`` as Detectron2's ``--opts`` takes it;
    each VALUE is read as YAML. Raises ConfigError naming the file, key and problem.
    """
    path = Path(path)
    if "\x00" in str(path):
        raise ConfigError("config path contains a NUL byte", file=repr(str(path)))
    merged = copy.deepcopy(DEFAULTS)
    for file, overrides in _load_chain(path, ()):
        logger.debug("merging config %s", file)
        deep_merge(merged, overrides)
    if opts:
        deep_merge(merged, parse_opts(opts))
    return Config(merged, source=str(path))


def parse_opts(opts: list[str]) -> dict[str, Any]:
    """Turn ``[KEY, VALUE, ...]`` into checked nested overrides; raise ConfigError on errors."""
    if isinstance(opts, (str, bytes)) or not isinstance(opts, (list, tuple)):
        raise ConfigError("opts must be a list of KEY VALUE strings", file=OPTS_SOURCE)
    if len(opts) % 2:
        raise ConfigError(
            f"opts need KEY VALUE pairs, got an odd count ({len(opts)}); "
            f"the last key {opts[-1]!r} has no value",
            key=str(opts[-1]),
            file=OPTS_SOURCE,
        )
    overrides: dict[str, Any] = {}
    for raw_key, raw_value in zip(opts[0::2], opts[1::2], strict=True):
        key, value = _parse_opt(raw_key, raw_value)
        deep_merge(overrides, check_overrides(_nest(key, value), OPTS_SOURCE))
    return overrides


def _parse_opt(raw_key: Any, raw_value: Any) -> tuple[str, Any]:
    if not isinstance(raw_key, str) or not isinstance(raw_value, str):
        raise ConfigError(
            f"opts items must be strings, got {raw_key!r} {raw_value!r}",
            key=str(raw_key),
            file=OPTS_SOURCE,
        )
    parts = raw_key.split(".")
    if not all(parts):
        raise ConfigError(f"malformed key {raw_key!r}", key=raw_key, file=OPTS_SOURCE)
    if raw_value.strip() == "":
        return raw_key, ""
    try:
        return raw_key, yaml.safe_load(raw_value)
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(
            f"value {raw_value!r} is not valid YAML: {problem}", key=raw_key, file=OPTS_SOURCE
        ) from None
    except RecursionError:
        raise ConfigError("value is nested too deeply", key=raw_key, file=OPTS_SOURCE) from None


def _nest(dotted: str, value: Any) -> dict[str, Any]:
    parts = dotted.split(".")
    nested: dict[str, Any] = {parts[-1]: value}
    for part in reversed(parts[:-1]):
        nested = {part: nested}
    return nested


def _load_chain(path: Path, stack: tuple[Path, ...]) -> list[tuple[str, dict[str, Any]]]:
    """[(file, checked overrides)] for ``path`` and its bases, base-first."""
    resolved = _resolve(path, path)
    if resolved in stack:
        chain = " -> ".join(str(p) for p in (*stack, resolved))
        raise ConfigError(f"_BASE_ chain has a cycle: {chain}", key=BASE_KEY, file=str(path))
    raw = read_yaml_mapping(path)
    bases = _base_paths(raw.pop(BASE_KEY, None), path) if BASE_KEY in raw else []
    layers: list[tuple[str, dict[str, Any]]] = []
    for base in bases:
        layers.extend(_load_chain(base, (*stack, resolved)))
    layers.append((str(path), check_overrides(raw, str(path))))
    return layers


def _base_paths(value: Any, path: Path) -> list[Path]:
    """Paths named by a ``_BASE_`` value (a string or a list of strings) in file ``path``."""
    names = value if isinstance(value, list) else [value]
    if not names or not all(isinstance(n, str) and n.strip() for n in names):
        raise ConfigError(
            f"_BASE_ must be a file path or a list of them, got {value!r}",
            key=BASE_KEY,
            file=str(path),
        )
    paths = []
    for name in names:
        if "://" in name:
            raise ConfigError(
                f"remote base config {name!r} is not supported; download it and name the local "
                "file in _BASE_",
                key=BASE_KEY,
                file=str(path),
            )
        base = Path(os.path.expanduser(name))
        if not base.is_absolute():
            base = Path(os.path.normpath(path.parent / base))
        if not base.is_file():
            raise ConfigError(f"base config {base} not found", key=BASE_KEY, file=str(path))
        paths.append(base)
    return paths


def _resolve(path: Path, named_in: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError) as exc:
        raise ConfigError(f"cannot resolve config path {path}: {exc}", file=str(named_in)) from None


def read_yaml_mapping(path: Path) -> dict[str, Any]:
    """Read a YAML file with ``yaml.safe_load`` (plus the model zoo's arithmetic ``eval`` tag,
    computed by :mod:`export_tools.config.yaml_tags`); it must hold a mapping."""
    text = _read_text(path)
    try:
        data = load_yaml(text)
    except yaml.MarkedYAMLError as exc:
        raise ConfigError(_yaml_message(exc), file=str(path)) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", file=str(path)) from None
    except RecursionError:
        raise ConfigError("YAML is nested too deeply", file=str(path)) from None
    if data is None:
        raise ConfigError("file is empty; expected a mapping of config keys", file=str(path))
    if not isinstance(data, dict):
        raise ConfigError(
            f"expected a mapping of config keys at the top level, got {type(data).__name__}",
            file=str(path),
        )
    return resolve_eval_tags(data, str(path))


def _read_text(path: Path) -> str:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise ConfigError(f"file is larger than {MAX_FILE_BYTES} bytes", file=str(path))
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("config file not found", file=str(path)) from None
    except IsADirectoryError:
        raise ConfigError("expected a config file, got a directory", file=str(path)) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"file is not UTF-8 text ({exc.reason})", file=str(path)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file: {exc.strerror}", file=str(path)) from None


def _yaml_message(exc: yaml.MarkedYAMLError) -> str:
    mark = exc.problem_mark or exc.context_mark
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    problem = exc.problem or exc.context or "syntax error"
    message = f"invalid YAML{where}: {problem}"
    if isinstance(exc, yaml.constructor.ConstructorError) and "tag" in problem:
        message += " (only plain YAML is accepted: Python object tags are refused)"
    return message
