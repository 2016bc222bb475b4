"""Model references in ``config.yaml``: a file path, or ``zoo:NAME`` for an official Detectron2
model-zoo entry, exported on first use and cached.

The cache folder is ``$D2STREAM_CACHE``, else systemd's ``$CACHE_DIRECTORY`` (``CacheDirectory=``
of the unit: ``/var/cache/d2stream``), else ``$XDG_CACHE_HOME/d2stream``, else
``~/.cache/d2stream``; exported models live in ``<cache>/onnx/<NAME>.onnx`` and downloaded weights
in ``<cache>/weights/``. A device without the export tools uses a model exported elsewhere and
copied into the cache; only a missing one needs ``export_tools`` (imported lazily here).
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from daemon.errors import ModelError

logger = logging.getLogger(__name__)

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
    """``zoo:configs/COCO-Detection/x.yaml`` -> ``COCO-Detection/x`` (the catalog key)."""
    name = name.strip().removeprefix(ZOO_PREFIX).strip().removeprefix("configs/")
    return re.sub(r"\.(yaml|py)$", "", name)


def is_zoo_reference(value: str | os.PathLike[str]) -> bool:
    return str(value).strip().startswith(ZOO_PREFIX)


def zoo_onnx_path(name: str, cache: Path | None = None) -> Path:
    """Where the exported model of zoo entry ``name`` is cached."""
    return (cache or cache_dir()) / "onnx" / f"{normalise_zoo_name(name)}.onnx"


def resolve_model(value: str | os.PathLike[str], cache: Path | None = None) -> Path:
    """The ONNX file a config's model entry names; exports ``zoo:NAME`` on first use.

    Raises:
        ModelError: ``zoo:NAME`` is not cached and cannot be exported on this machine.
        D2StreamError: from the export (unknown name, download or checksum failure).
    """
    if not is_zoo_reference(value):
        return Path(value).expanduser()
    name = normalise_zoo_name(str(value))
    path = zoo_onnx_path(name, cache)
    if path.is_file():
        logger.info("model zoo:%s from the cache: %s", name, path)
        return path
    hint = (f"run `d2stream zoo export {name}` on a machine with pip install 'd2stream[export]' "
            f"and copy the result to {path}")
    try:
        from export_tools.zoo import export_zoo_model  # noqa: PLC0415 - desktop tools, lazily
    except ImportError as exc:
        raise ModelError(f"model zoo:{name} is not in the cache ({path}) and the export tools "
                         f"are not installed ({exc.name} missing); {hint}") from None
    logger.info("model zoo:%s is not cached yet: exporting it once to %s", name, path)
    try:
        return export_zoo_model(name, path, cache=cache)
    except ImportError as exc:
        raise ModelError(f"cannot export zoo:{name} here ({exc.name} missing); {hint}") from None
