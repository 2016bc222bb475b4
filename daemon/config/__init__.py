"""The daemon's YAML config: schema (pydantic, unknown keys rejected) and loader."""

from daemon.config.errors import EXIT_CONFIG, ConfigError
from daemon.config.loader import load_config, parse_config
from daemon.config.schema import CameraSection, DaemonConfig

__all__ = [
    "EXIT_CONFIG",
    "CameraSection",
    "ConfigError",
    "DaemonConfig",
    "load_config",
    "parse_config",
]
