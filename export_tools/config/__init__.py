"""Torch-free Detectron2 config loading: YAML files (with ``_BASE_`` chains) merged onto
Detectron2's defaults, ``--opts`` overrides, and the exporter's support check.

    cfg = load_config("config.yaml", opts=["MODEL.ROI_HEADS.SCORE_THRESH_TEST", "0.5"])
    check_supported(cfg)
    cfg.MODEL.RESNETS.DEPTH
"""

from export_tools.config.loader import load_config
from export_tools.config.node import Config
from export_tools.config.supported import check_supported
from export_tools.errors import ConfigError

__all__ = ["Config", "ConfigError", "check_supported", "load_config"]
