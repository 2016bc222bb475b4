"""Model references in ``config.yaml``: a file path, or ``zoo:NAME`` for an official Detectron2
model-zoo entry, exported on first use and cached.

Names and cache paths are in :mod:`d2common.zoo_names`. A device without the export tools
uses a model exported elsewhere and copied into the cache; only a missing one needs
``export_tools`` (imported lazily here).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from d2common.errors import ModelError
from d2common.zoo_names import is_zoo_reference, normalise_zoo_name, zoo_onnx_path

logger = logging.getLogger(__name__)


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
