"""Torch-free Detectron2 config loading: YAML files (with ``_BASE_`` chains) merged onto
Detectron2's defaults and ``--opts`` overrides. What the exporter can build is checked by
:func:`export_tools.modeling.supported.check_supported`.

    cfg = load_config("config.yaml", opts=["MODEL.ROI_HEADS.SCORE_THRESH_TEST", "0.5"])
    cfg.MODEL.RESNETS.DEPTH
"""

from export_tools.config.loader import load_config
from export_tools.config.node import Config
from export_tools.errors import ConfigError

__all__ = ["Config", "ConfigError", "load_config"]
