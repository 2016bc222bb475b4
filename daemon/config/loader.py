"""Load the daemon's YAML config: parse, expand ``${VAR}``, validate, report one-line errors."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from daemon.config.errors import ConfigError
from daemon.config.events_checks import check_event_settings
from daemon.config.path_types import service_dirs
from daemon.config.schema import DaemonConfig

_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_UNION_TAGS = {"opencv", "picamera2", "folder"}

#: A config is a few kilobytes; these bounds keep a hostile file (a YAML "billion laughs" of
#: nested aliases, a self-referencing alias, megabytes of nesting) from exhausting time or memory.
MAX_CONFIG_BYTES = 1 << 20
MAX_VALUES = 20_000
MAX_DEPTH = 32
_MAX_SHOWN = 80


def load_config(
    path: str | Path, *, env: Mapping[str, str] | None = None, check_files: bool = True
) -> DaemonConfig:
    """Read and validate a daemon config file.

    Args:
        path: the YAML file.
        env: environment used for ``${VAR}`` / ``${VAR:-default}`` expansion and for systemd's
            ``$STATE_DIRECTORY`` / ``$CACHE_DIRECTORY`` (``os.environ``).
        check_files: verify that the model, video files and image folders exist.

    Raises:
        ConfigError: one line naming the file, the key path and the problem.
    """
    path = Path(path)
    name = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(f"config file is {size} bytes, more than the limit of "
                              f"{MAX_CONFIG_BYTES}", file=name)
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("config file not found", file=name) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file: {exc}", file=name) from None
    return parse_config(text, name=name, base_dir=path.resolve().parent, env=env,
                        check_files=check_files)


def parse_config(
    text: str,
    *,
    name: str = "<config>",
    base_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
    check_files: bool = True,
) -> DaemonConfig:
    """Validate YAML text; see :func:`load_config`."""
    env = os.environ if env is None else env
    data = _parse_yaml(text, name)
    check_bounds(data, name)
    data = expand_env(data, env, name)
    context = {"base_dir": base_dir, "check_files": check_files, **service_dirs(env)}
    try:
        config = DaemonConfig.model_validate(data, context=context)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc), file=name) from None
    _check_semantics(config, name)
    return config


def _parse_yaml(text: str, name: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"invalid YAML: {where}{problem}", file=name) from None
    except RecursionError:
        raise ConfigError("invalid YAML: nested too deeply", file=name) from None
    except (ValueError, OverflowError) as exc:  # e.g. an integer of more than 4300 digits
        raise ConfigError(f"invalid YAML: {_shorten(str(exc))}", file=name) from None
    if data is None:
        raise ConfigError("empty config (expected a mapping with model: and cameras:)", file=name)
    if not isinstance(data, dict):
        raise ConfigError(f"expected a mapping at the top level, got {type(data).__name__}",
                          file=name)
    return data


def check_bounds(data: Any, name: str) -> None:
    """Refuse a parsed YAML tree with more than ``MAX_VALUES`` values (aliases counted each time
    they are used), deeper than ``MAX_DEPTH`` or containing itself (a recursive alias).

    Raises:
        ConfigError: naming the limit that was exceeded.
    """
    count = 0
    stack: list[tuple[Any, int, frozenset[int]]] = [(data, 0, frozenset())]
    while stack:
        value, depth, parents = stack.pop()
        count += 1
        if count > MAX_VALUES:
            raise ConfigError(f"more than {MAX_VALUES} values (YAML aliases expanding?)",
                              file=name)
        if depth > MAX_DEPTH:
            raise ConfigError(f"nested deeper than {MAX_DEPTH} levels", file=name)
        if isinstance(value, dict):
            children = [*value.keys(), *value.values()]
        elif isinstance(value, (list, tuple, set, frozenset)):
            children = list(value)
        else:
            continue
        if id(value) in parents:
            raise ConfigError("a YAML alias refers to a value that contains it", file=name)
        inner = parents | {id(value)}
        stack.extend((child, depth + 1, inner) for child in children)


def expand_env(value: Any, env: Mapping[str, str], name: str, key: str = "") -> Any:
    """Replace ``${VAR}`` and ``${VAR:-default}`` in every string of a parsed YAML tree."""
    if isinstance(value, dict):
        return {k: expand_env(v, env, name, _join(key, str(k))) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, env, name, f"{key}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def substitute(match: re.Match[str]) -> str:
        var, default = match.group(1), match.group(2)
        if var in env and (env[var] != "" or default is None):
            return env[var]
        if default is not None:
            return default
        raise ConfigError(f"environment variable {var} is not set", key=key, file=name)

    return _ENV_RE.sub(substitute, value)


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def format_key_path(loc: tuple[int | str, ...]) -> str:
    """``('cameras', 0, 'source', 'opencv', 'url')`` -> ``cameras[0].source.url``."""
    out = ""
    for i, part in enumerate(loc):
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in _UNION_TAGS and i > 0 and loc[i - 1] == "source":
            continue
        else:
            out = _join(out, _printable(str(part)))
    return out or "(top level)"


def _printable(text: str) -> str:
    """``text`` with control characters escaped and cut to a readable length."""
    if not text.isprintable():
        text = text.encode("unicode_escape").decode("ascii")
    return _shorten(text)


def _shorten(text: str, limit: int = _MAX_SHOWN) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _describe(error: Mapping[str, Any]) -> tuple[str, str]:
    loc = tuple(error.get("loc", ()))
    kind = error.get("type", "")
    if kind == "missing":
        return format_key_path(loc), "field required"
    if kind == "extra_forbidden":
        return format_key_path(loc), "unknown key"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        tags = ", ".join(sorted(_UNION_TAGS))
        given = error.get("input")
        got = given.get("type") if isinstance(given, dict) else None
        what = f"unknown source type {got!r}" if got is not None else "missing source type"
        return format_key_path((*loc, "type")), f"{what} (expected one of: {tags})"
    message = str(error.get("msg", "invalid value"))
    message = message.removeprefix("Value error, ")
    message = message[:1].lower() + message[1:]
    if kind not in ("value_error",) and "input" in error and not isinstance(error["input"], dict):
        message += f" (got {_shorten(repr(error['input']))})"
    return format_key_path(loc), message


def format_validation_error(exc: ValidationError) -> str:
    """All problems of a pydantic error on one line: ``key: problem; key: problem``."""
    parts = []
    for error in exc.errors():
        key, message = _describe(error)
        parts.append(f"{key}: {message}")
    return "; ".join(dict.fromkeys(parts))


def _check_semantics(config: DaemonConfig, name: str) -> None:
    seen: dict[str, int] = {}
    for i, camera in enumerate(config.cameras):
        if camera.name in seen:
            raise ConfigError(
                f"duplicate camera name {camera.name!r} (also cameras[{seen[camera.name]}])",
                key=f"cameras[{i}].name", file=name)
        seen[camera.name] = i
    if not config.enabled_cameras():
        raise ConfigError("no camera is enabled", key="cameras", file=name)
    check_event_settings(config, name)
