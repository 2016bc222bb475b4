"""Names and cache paths of model-zoo entries, shared by the daemon and the export tools.

A config's ``zoo:NAME`` names an official Detectron2 model-zoo entry. The cache folder is
``$D2STREAM_CACHE``, else systemd's ``$CACHE_DIRECTORY`` (``CacheDirectory=`` of the unit:
``/var/cache/d2stream``), else ``$XDG_CACHE_HOME/d2stream``, else ``~/.cache/d2stream``; exported
models live in ``<cache>/onnx/<NAME>.onnx`` and downloaded weights in ``<cache>/weights/``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

ZOO_PREFIX = "zoo:"
CACHE_ENV = "D2STREAM_CACHE"
OFFLINE_ENV = "D2STREAM_OFFLINE"


def cache_dir() -> Path:
    """The d2stream cache folder (not created here)."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit).expanduser()
    systemd = os.environ.get("CACHE_DIRECTORY", "").split(":")[0].strip()
    if systemd:
        return Path(systemd)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "d2stream"


def offline_mode() -> bool:
    """True when ``D2STREAM_OFFLINE`` is set to a true value (1, true, yes, on)."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def normalise_zoo_name(name: str) -> str:
    """``zoo:configs/COCO-Detection/x.yaml`` -> ``COCO-Detection/x`` (the catalog key); a project
    config (``projects/ViTDet/configs/COCO/x.py``) -> ``ViTDet/COCO/x``."""
    name = name.strip().removeprefix(ZOO_PREFIX).strip().removeprefix("configs/")
    name = re.sub(r"^projects/([^/]+)/configs/", r"\1/", name)
    return re.sub(r"\.(yaml|py)$", "", name)


def is_zoo_reference(value: str | os.PathLike[str]) -> bool:
    return str(value).strip().startswith(ZOO_PREFIX)


def zoo_onnx_path(name: str, cache: Path | None = None) -> Path:
    """Where the exported model of zoo entry ``name`` is cached."""
    return (cache or cache_dir()) / "onnx" / f"{normalise_zoo_name(name)}.onnx"
