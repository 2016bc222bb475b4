"""Path settings of the config and where relative ones are taken from.

- Input paths (the model, videos, image folders) and every path outside systemd: relative to the
  directory of the config file.
- State paths (event log, MQTT outbox, snapshots): relative to ``$STATE_DIRECTORY`` when the
  daemon runs under systemd with ``StateDirectory=`` (``/var/lib/d2stream``).
- Cache paths (``model.optimized_cache``): relative to ``$CACHE_DIRECTORY`` (``CacheDirectory=``,
  ``/var/cache/d2stream``).

The directories come to validation as ``context={"base_dir", "state_dir", "cache_dir"}``
(:func:`service_dirs` reads them from the environment). Absolute paths are used as written.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, ValidationInfo

STATE_ENV = "STATE_DIRECTORY"
CACHE_ENV = "CACHE_DIRECTORY"


def first_directory(value: str | None) -> Path | None:
    """The first entry of a systemd directory variable (``A:B`` when several are configured)."""
    if not value:
        return None
    first = value.split(":")[0].strip()
    return Path(first) if first else None


def service_dirs(env: Mapping[str, str]) -> dict[str, Path | None]:
    """``state_dir`` and ``cache_dir`` from systemd's ``$STATE_DIRECTORY``/``$CACHE_DIRECTORY``
    (``None`` when not run by systemd)."""
    return {"state_dir": first_directory(env.get(STATE_ENV)),
            "cache_dir": first_directory(env.get(CACHE_ENV))}


def resolve_path(value: Path | str, info: ValidationInfo, kind: str = "base_dir") -> Path:
    """Absolute path of ``value``: relative paths are taken from the context's ``kind``
    directory (``state_dir``, ``cache_dir``), falling back to the config file's directory."""
    path = Path(value).expanduser()
    context = info.context or {}
    base = context.get(kind) or context.get("base_dir")
    if not path.is_absolute() and base is not None:
        path = Path(base) / path
    return path.resolve() if path.is_absolute() else path


def _state(value: Path, info: ValidationInfo) -> Path:
    return resolve_path(value, info, "state_dir")


def _cache(value: Path, info: ValidationInfo) -> Path:
    return resolve_path(value, info, "cache_dir")


#: An input path, resolved against the config file's directory.
ConfigPath = Annotated[Path, AfterValidator(resolve_path)]
#: A path the daemon writes state to: under ``$STATE_DIRECTORY`` when systemd sets it.
StatePath = Annotated[Path, AfterValidator(_state)]
#: A path the daemon writes cache files to: under ``$CACHE_DIRECTORY`` when systemd sets it.
CachePath = Annotated[Path, AfterValidator(_cache)]
