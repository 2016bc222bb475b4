"""Errors raised while reading a config or checkpoint, or building the graph."""

from __future__ import annotations

from d2common.errors import D2StreamError


class ExportError(D2StreamError):
    """Base class for export failures."""


class ConfigError(ExportError):
    """A config file or override that is invalid; ``key`` is the dotted key path, if known."""

    exit_code = 2

    def __init__(self, message: str, key: str | None = None, file: str | None = None) -> None:
        parts = (f"file {file}" if file else "", f"key {key}" if key else "")
        where = ", ".join(p for p in parts if p)
        super().__init__(f"{where}: {message}" if where else message)
        self.key = key
        self.file = file


class CheckpointError(ExportError):
    """A checkpoint that cannot be read safely (corrupt, truncated, or malicious)."""

    exit_code = 2


class WeightsError(ExportError):
    """Checkpoint weights that do not match the architecture the config describes."""

    exit_code = 2
