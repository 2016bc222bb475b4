"""From a zoo name to an ONNX file: download the weights, build the config, export."""

from __future__ import annotations

import logging
from pathlib import Path

from d2common.zoo_names import zoo_onnx_path
from export_tools.zoo.catalog import ZooEntry, ZooError, get_entry
from export_tools.zoo.download import Checksum, cache_dir, fetch

logger = logging.getLogger(__name__)


def fetch_weights(
    entry: ZooEntry,
    *,
    cache: Path | None = None,
    base_url: str | None = None,
    offline: bool | None = None,
    progress: bool = True,
) -> Path:
    """The entry's checkpoint in ``<cache>/weights/<name>/<id>/<file>``, downloaded if needed."""
    dest = (cache or cache_dir()) / "weights" / entry.cache_relpath()
    checksum = Checksum(sha256=entry.sha256, md5_prefix=entry.md5_prefix)
    return fetch(entry.url(base_url), dest, checksum, offline=offline, progress=progress)


def export_zoo_model(
    name: str,
    output: Path | None = None,
    *,
    cache: Path | None = None,
    base_url: str | None = None,
    offline: bool | None = None,
    progress: bool = True,
) -> Path:
    """Export zoo entry ``name`` to ``output`` (default: the cache) and return the ONNX path.

    The weights come from the cache or are downloaded (see :func:`fetch_weights`); the config is
    Detectron2's defaults plus the entry's overrides (a LazyConfig entry: its LazyConfig tree, as
    ``LazyConfig.save`` writes it), written beside the weights as ``config.yaml`` so the export
    can be reproduced with ``d2stream export --config-file``. An entry the exporter refuses
    (``refused``) fails here, before anything is downloaded.
    """
    from export_tools.export import export_model  # noqa: PLC0415 - needs the export extra

    entry = get_entry(name)
    if entry.refused:
        raise ZooError(f"{entry.name} is listed but cannot be exported: {entry.refused}",
                       key="--model-zoo")
    weights = fetch_weights(entry, cache=cache, base_url=base_url, offline=offline,
                            progress=progress)
    config_path = entry.write_config(weights.with_name("config.yaml"), weights)
    out = Path(output) if output is not None else zoo_onnx_path(entry.name, cache)
    info = entry.info
    export_model(
        config_path, weights, out, model_name=entry.name,
        class_names=list(info.thing_classes) if info.thing_classes else None,
        keypoint_names=list(info.keypoint_names) if info.keypoint_names else None,
        stuff_classes=list(info.stuff_classes) if info.stuff_classes else None,
    )
    logger.info("exported %s -> %s", entry.name, out)
    return out
