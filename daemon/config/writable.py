"""Every path the daemon writes, checked before it starts, and the folders it needs created.

``d2stream check-config`` and ``d2stream run`` both call :func:`check_writable`: a path that
cannot be written is a config error naming its key (exit 78), not a ``Permission denied`` later.
``run`` then creates the folders (:func:`create_folders`), so that nothing waits for a folder
that no one makes.
"""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass
from pathlib import Path

from d2common.zoo_names import cache_dir, is_zoo_reference, normalise_zoo_name, zoo_onnx_path
from daemon.config.errors import ConfigError
from daemon.config.schema import DaemonConfig


@dataclass(frozen=True)
class WrittenPath:
    """``key``: the config key; ``path``; ``folder``: a folder written into, else a file
    (written, rotated or replaced in its folder, which must be writable too)."""

    key: str
    path: Path
    folder: bool

    @property
    def directory(self) -> Path:
        return self.path if self.folder else self.path.parent


def written_paths(config: DaemonConfig) -> list[WrittenPath]:
    """What the daemon will write with ``config``: enabled outputs and caches only."""
    out = config.outputs
    paths = []
    model = config.model
    # onnxruntime caches its optimised graph there, auto its measured choice of engine
    if model.backend in ("auto", "onnxruntime") and model.optimized_cache is not None:
        paths.append(WrittenPath("model.optimized_cache", model.optimized_cache, True))
    if is_zoo_reference(model.path):
        name = normalise_zoo_name(str(model.path))
        if not zoo_onnx_path(name).is_file():  # exported once, on the first start
            paths.append(WrittenPath("model.path", cache_dir(), True))
    if out.event_log.enabled:
        paths.append(WrittenPath("outputs.event_log.path", out.event_log.path, False))
    if out.mqtt.enabled and out.mqtt.outbox.enabled and not out.journal.enabled:
        paths.append(WrittenPath("outputs.mqtt.outbox.path", out.mqtt.outbox.path, False))
    if out.snapshots.enabled:
        paths.append(WrittenPath("outputs.snapshots.dir", out.snapshots.dir, True))
    if out.journal.enabled:
        paths.append(WrittenPath("outputs.journal.path", out.journal.path, False))
    if out.database.enabled:
        paths.append(WrittenPath("outputs.database.path", out.database.path, False))
    if out.recordings.enabled:
        paths.append(WrittenPath("outputs.recordings.dir", out.recordings.dir, True))
    return paths


def _user() -> str:
    try:
        return f"user {pwd.getpwuid(os.geteuid()).pw_name}"
    except KeyError:
        return f"uid {os.geteuid()}"


def _read_only(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def path_problem(item: WrittenPath) -> str | None:
    """Why ``item`` cannot be written by this process, or ``None``."""
    try:
        return _problem(item)
    except (OSError, ValueError) as exc:  # a NUL byte, a name too long...
        return f"unusable path {str(item.path)[:80]!r}: {getattr(exc, 'strerror', None) or exc}"


def _problem(item: WrittenPath) -> str | None:
    path, folder = item.path, item.directory
    if "\x00" in str(path):
        raise ValueError("a NUL byte in the path")
    if path.exists() and item.folder != path.is_dir():
        return f"{path} is {'not ' if item.folder else ''}a folder"
    if not item.folder and path.exists() and not os.access(path, os.W_OK):
        return f"{path} is not writable by {_user()}"
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"cannot create {folder}: {existing} is not a folder"
    if os.access(existing, os.W_OK | os.X_OK):
        return None
    why = "is on a read-only file system" if _read_only(existing) \
        else f"is not writable by {_user()}"
    start = f"cannot write {path}" if existing == folder else f"cannot create {folder}"
    return f"{start}: {existing} {why}"


def check_writable(config: DaemonConfig, file: str | None = None) -> list[WrittenPath]:
    """Every path of :func:`written_paths`, checked; returns them.

    Raises:
        ConfigError: naming each key whose path cannot be written (all on one line).
    """
    paths = written_paths(config)
    problems = [f"{p.key}: {why}" for p in paths if (why := path_problem(p)) is not None]
    if problems:
        hint = ("relative paths are taken from $STATE_DIRECTORY / $CACHE_DIRECTORY under "
                "systemd, else from the config file's folder (docs/install.md)")
        raise ConfigError(f"{'; '.join(problems)} ({hint})", file=file)
    return paths


def create_folders(config: DaemonConfig) -> None:
    """Check every written path, then create the folders they need.

    Raises:
        ConfigError: a path cannot be written or its folder cannot be created (naming the key).
    """
    for item in check_writable(config):
        try:
            item.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create {item.directory}: {exc.strerror or exc}",
                              key=item.key) from None
