"""Detectron2 LazyConfig models: the ``config.yaml`` that ``LazyConfig.save`` writes, read as data.

    tree = read_lazy_yaml("config.yaml")        # safe YAML + markers, interpolations resolved
    cfg = lazy_to_config(tree, state, source)   # our Config, each _target_ through a table

Nothing a file names is imported or called; ``config.yaml.pkl`` is never read.
"""

from export_tools.lazy.reader import is_lazy_config, read_lazy_yaml
from export_tools.lazy.translate import load_lazy_config

__all__ = ["is_lazy_config", "load_lazy_config", "read_lazy_yaml"]
