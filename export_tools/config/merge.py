"""Checking a mapping of overrides against the defaults, and merging checked overrides.

``check_overrides`` walks a file's mapping (or the nested form of one ``--opts`` pair) next to the
defaults: every key must exist there (yacs semantics: no new keys), every section must be a
mapping and every leaf must fit its default's type (see ``values.coerce_value``).
"""

from __future__ import annotations

import difflib
from typing import Any

from export_tools.config.defaults import DEFAULTS, LATEST_VERSION
from export_tools.config.values import ValueProblem, coerce_value, describe
from export_tools.errors import ConfigError

PROJECT_KEYS_NOTE = "keys that Detectron2 projects add (PointRend, DeepLab, ...) are not supported"


def check_overrides(raw: dict[Any, Any], file: str) -> dict[str, Any]:
    """Return ``raw`` checked against the defaults, values coerced; raise ConfigError."""
    return _check_section(raw, DEFAULTS, "", file)


def deep_merge(dst: dict[str, Any], src: dict[str, Any]) -> None:
    """Merge checked overrides ``src`` into ``dst`` in place: sections recursively, leaves
    replaced."""
    for key, value in src.items():
        if isinstance(value, dict) and isinstance(dst.get(key), dict):
            deep_merge(dst[key], value)
        else:
            dst[key] = value


def _check_section(
    raw: dict[Any, Any], defaults: dict[str, Any], prefix: str, file: str
) -> dict[str, Any]:
    checked: dict[str, Any] = {}
    for key, value in raw.items():
        if not isinstance(key, str):
            raise ConfigError(
                f"config keys must be strings, got {describe(key)} in "
                f"{prefix[:-1] or 'the top level'}",
                key=f"{prefix}{key}",
                file=file,
            )
        full_key = prefix + key
        if key not in defaults:
            raise ConfigError(_unknown_key_message(key, defaults, prefix), key=full_key, file=file)
        default = defaults[key]
        if isinstance(default, dict):
            if not isinstance(value, dict):
                raise ConfigError(
                    f"{full_key} is a section; expected a mapping, got {describe(value)}",
                    key=full_key,
                    file=file,
                )
            checked[key] = _check_section(value, default, full_key + ".", file)
        else:
            checked[key] = _check_leaf(full_key, value, default, file)
    return checked


def _check_leaf(full_key: str, value: Any, default: Any, file: str) -> Any:
    try:
        coerced = coerce_value(full_key, value, default)
    except ValueProblem as exc:
        raise ConfigError(str(exc), key=full_key, file=file) from None
    if full_key == "VERSION" and coerced != LATEST_VERSION:
        raise ConfigError(
            f"config VERSION {coerced} is not supported; only version {LATEST_VERSION} "
            "(current Detectron2) is. Upgrade the file with Detectron2's "
            "detectron2.config.compat.upgrade_config and dump it again",
            key=full_key,
            file=file,
        )
    return coerced


def _unknown_key_message(key: str, defaults: dict[str, Any], prefix: str) -> str:
    where = prefix[:-1] or "the top level"
    message = f"unknown config key {prefix + key}: Detectron2 has no such key in {where}"
    close = difflib.get_close_matches(key, list(defaults), n=3, cutoff=0.6)
    elsewhere = _paths_ending_with(key, DEFAULTS, "")
    if close:
        message += "; did you mean " + " or ".join(prefix + c for c in close) + "?"
    elif elsewhere:
        message += "; a key of that name exists at " + ", ".join(elsewhere[:4])
    return f"{message} ({PROJECT_KEYS_NOTE})"


def _paths_ending_with(name: str, tree: dict[str, Any], prefix: str) -> list[str]:
    found = []
    for key, value in tree.items():
        if key == name:
            found.append(prefix + key)
        if isinstance(value, dict):
            found.extend(_paths_ending_with(name, value, prefix + key + "."))
    return found
