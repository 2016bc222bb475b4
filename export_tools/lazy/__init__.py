"""Detectron2 LazyConfig models: the ``config.yaml`` that ``LazyConfig.save`` writes, read as data.

    tree = read_lazy_yaml("config.yaml")        # safe YAML + markers, interpolations resolved
    cfg = lazy_to_config(tree, state, source)   # our Config, each _target_ through a table

Nothing a file names is imported or called; ``config.yaml.pkl`` is never read. The translation
(and with it the model builders) is imported on first use, so that reading the markers or the
zoo catalog stays light.
"""

from typing import Any

from export_tools.lazy.reader import is_lazy_config, read_lazy_yaml

__all__ = ["is_lazy_config", "load_lazy_config", "read_lazy_yaml"]


def __getattr__(name: str) -> Any:
    if name == "load_lazy_config":
        from export_tools.lazy.translate import load_lazy_config  # noqa: PLC0415

        return load_lazy_config
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
