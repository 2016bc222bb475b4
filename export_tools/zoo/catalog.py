"""Look up official Detectron2 model-zoo entries by name (``COCO-Detection/retinanet_R_50_FPN_3x``).

The entries are data: :mod:`export_tools.zoo.catalog_data` (YAML-config models: the config keys
that differ from Detectron2's defaults) and :mod:`export_tools.zoo.catalog_lazy_data`
(LazyConfig models: new baselines, ViTDet, MViTv2, each with its LazyConfig tree), each with the
weight file and the dataset its classes come from. Users may add their own entries (a private
zoo, or a model trained in-house) with a YAML or JSON file named by ``D2STREAM_ZOO_CATALOG``; see
:func:`load_catalog_file`.
"""

from __future__ import annotations

import copy
import difflib
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from d2common.zoo_names import normalise_zoo_name
from export_tools.errors import ConfigError
from export_tools.zoo.catalog_data import ENTRIES
from export_tools.zoo.catalog_lazy_data import CONFIGS as LAZY_CONFIGS
from export_tools.zoo.catalog_lazy_data import ENTRIES as LAZY_ENTRIES
from export_tools.zoo.datasets import DATASETS, DatasetInfo
from export_tools.zoo.lazy_configs import config_tree as lazy_config_tree
from export_tools.zoo.lazy_configs import inference_tree

DEFAULT_BASE_URL = "https://dl.fbaipublicfiles.com/detectron2/"
BASE_URL_ENV = "D2STREAM_ZOO_URL"
CATALOG_ENV = "D2STREAM_ZOO_CATALOG"

# Detectron2's zoo file names end in the first 6 hex digits of the file's MD5 (MODEL_ZOO.md).
_MD5_SUFFIX = re.compile(r"_([0-9a-f]{6})\.(?:pkl|pth)$")


class ZooError(ConfigError):
    """An unknown zoo name or an invalid catalog entry."""


@dataclass(frozen=True)
class ZooEntry:
    """One model of the zoo.

    Attributes:
        name: zoo path without extension, e.g. ``COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x``.
        weights: file under ``<base URL>/<name>/`` (``137849600/model_final_f10217.pkl``) or an
            absolute ``http(s)://`` / ``file://`` URL.
        dataset: key of :data:`export_tools.zoo.datasets.DATASETS` naming the classes.
        overrides: flat ``{"MODEL.RESNETS.DEPTH": 101}`` keys that differ from the defaults.
        sha256: full SHA-256 of the weight file, verified whenever set.
        class_names: explicit class names; take precedence over ``dataset``.
        lazy_config: a LazyConfig model: its tree (``model`` and ``dataloader.test.mapper``,
            markers for Python names); then ``overrides`` is empty.
        url_dir: the folder under the base URL when it is not ``name`` (ViTDet, MViTv2).
        refused: why the exporter does not build this entry (it is listed, not exported).
    """

    name: str
    weights: str
    dataset: str = "coco"
    overrides: Mapping[str, Any] = field(default_factory=dict)
    sha256: str | None = None
    class_names: tuple[str, ...] | None = None
    lazy_config: Mapping[str, Any] | None = None
    url_dir: str | None = None
    refused: str | None = None

    @property
    def is_lazy(self) -> bool:
        return self.lazy_config is not None

    @property
    def file_name(self) -> str:
        return self.weights.rsplit("/", 1)[-1]

    @property
    def md5_prefix(self) -> str | None:
        """The MD5 prefix Detectron2 encodes in its zoo file names, if the name carries one."""
        match = _MD5_SUFFIX.search(self.file_name)
        return match.group(1) if match else None

    def url(self, base_url: str | None = None) -> str:
        """Download URL; ``base_url`` (or ``$D2STREAM_ZOO_URL``) replaces the official host."""
        if re.match(r"^(https?|file)://", self.weights):
            return self.weights
        base = base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
        return f"{base.rstrip('/')}/{self.url_dir or self.name}/{self.weights}"

    def cache_relpath(self) -> Path:
        """Where the weights live under the cache's ``weights/`` folder (independent of host)."""
        parts = self.weights.split("://", 1)[-1].split("/")
        model_id = parts[-2] if len(parts) > 1 else ""
        return Path(self.name, model_id, self.file_name) if model_id else Path(
            self.name, self.file_name
        )

    @property
    def info(self) -> DatasetInfo:
        base = DATASETS.get(self.dataset, DatasetInfo(None))
        names = self.class_names or base.thing_classes
        return DatasetInfo(names, base.stuff_classes, base.keypoint_names)

    def config_tree(self, weights_path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
        """The overrides as a nested config dict, with ``MODEL.WEIGHTS`` set when given; for a
        LazyConfig entry its tree, with ``train.init_checkpoint`` set when given."""
        if self.lazy_config is not None:
            tree = copy.deepcopy(dict(self.lazy_config))
            if weights_path is not None:
                tree["train"] = {"init_checkpoint": str(weights_path)}
            return tree
        flat = dict(self.overrides)
        if weights_path is not None:
            flat["MODEL.WEIGHTS"] = str(weights_path)
        return unflatten(flat)

    def write_config(self, path: Path, weights_path: str | os.PathLike[str] | None = None) -> Path:
        """Write the entry as a Detectron2-style YAML config (only the non-default keys), or for a
        LazyConfig entry as the ``config.yaml`` ``LazyConfig.save`` would write."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.config_text(weights_path))
        return path

    def config_text(self, weights_path: str | os.PathLike[str] | None = None) -> str:
        if self.lazy_config is not None:
            from export_tools.lazy.writer import dump_lazy_yaml  # noqa: PLC0415

            return dump_lazy_yaml(self.config_tree(weights_path))
        return yaml.safe_dump(self.config_tree(weights_path), sort_keys=True)


def unflatten(flat: Mapping[str, Any]) -> dict[str, Any]:
    """``{"A.B": 1, "A.C": 2}`` -> ``{"A": {"B": 1, "C": 2}}``."""
    tree: dict[str, Any] = {}
    for key, value in flat.items():
        node = tree
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree


def _entry_from_mapping(name: str, data: Mapping[str, Any], source: str) -> ZooEntry:
    if not isinstance(data, Mapping) or "weights" not in data:
        raise ZooError("a zoo entry needs at least a 'weights' field", key=name, file=source)
    dataset = str(data.get("dataset", "coco"))
    names = data.get("class_names")
    if dataset not in DATASETS and names is None:
        raise ZooError(
            f"unknown dataset {dataset!r} (known: {', '.join(DATASETS)}); or give class_names",
            key=f"{name}.dataset", file=source,
        )
    sha = data.get("sha256")
    if sha is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", str(sha)):
        raise ZooError("sha256 must be 64 hex digits", key=f"{name}.sha256", file=source)
    overrides = data.get("overrides") or {}
    if not isinstance(overrides, Mapping):
        raise ZooError("overrides must be a mapping", key=f"{name}.overrides", file=source)
    flat = _flatten(overrides)
    lazy = data.get("lazy_config")
    if lazy is not None and flat:
        raise ZooError("give either overrides (a YAML-config model) or lazy_config",
                       key=name, file=source)
    return ZooEntry(
        name=name, weights=str(data["weights"]), dataset=dataset, overrides=flat,
        sha256=str(sha).lower() if sha else None,
        class_names=tuple(str(n) for n in names) if names is not None else None,
        lazy_config=_lazy_tree(f"{name}.lazy_config", lazy, source) if lazy else None,
        url_dir=str(data["url_dir"]) if data.get("url_dir") else None,
        refused=str(data["refused"]) if data.get("refused") else None,
    )


def _lazy_tree(key: str, value: Any, source: str) -> dict[str, Any]:
    """``lazy_config``: a stored config, a built-in LazyConfig entry's name, or a LazyConfig
    file (``config.yaml`` as ``LazyConfig.save`` writes it, or ``.py``) beside the catalog."""
    if not isinstance(value, str):
        raise ZooError("lazy_config must name a LazyConfig entry or file", key=key, file=source)
    if value in LAZY_CONFIGS:
        return lazy_config_tree(value, LAZY_CONFIGS)
    entry = LAZY_ENTRIES.get(normalise_zoo_name(value))
    if entry is not None:
        return lazy_config_tree(entry["lazy_config"], LAZY_CONFIGS)
    from export_tools.lazy.translate import read_lazy_tree  # noqa: PLC0415

    path = Path(value).expanduser()
    path = path if path.is_absolute() else Path(source).parent / path
    if not path.is_file():
        raise ZooError(f"{value!r} is neither a LazyConfig zoo entry nor a file ({path})",
                       key=key, file=source)
    return inference_tree(read_lazy_tree(path))


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Accept overrides either flat (``"MODEL.MASK_ON": true``) or nested."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def load_catalog_file(path: Path) -> dict[str, ZooEntry]:
    """Read extra entries from YAML/JSON: ``{name: {weights, dataset|class_names, overrides,
    sha256}}``. ``weights`` may be an absolute URL; ``overrides`` may be flat or nested."""
    try:
        text = path.read_text()
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise ZooError(f"cannot read zoo catalog: {exc}", file=str(path)) from None
    if not isinstance(data, Mapping):
        raise ZooError("a zoo catalog must map names to entries", file=str(path))
    return {str(n): _entry_from_mapping(str(n), e, str(path)) for n, e in data.items()}


def all_entries(extra: Iterable[Path] = ()) -> dict[str, ZooEntry]:
    """Built-in entries plus those from ``$D2STREAM_ZOO_CATALOG`` and ``extra`` files."""
    entries = {n: _entry_from_mapping(n, e, "catalog_data.py") for n, e in ENTRIES.items()}
    entries.update((n, _entry_from_mapping(n, e, "catalog_lazy_data.py"))
                   for n, e in LAZY_ENTRIES.items())
    files = [Path(p) for p in os.environ.get(CATALOG_ENV, "").split(os.pathsep) if p]
    for path in [*files, *extra]:
        entries.update(load_catalog_file(path))
    return entries


def normalise_name(name: str) -> str:
    """Accept ``zoo:X``, ``configs/X.yaml``, ``X.yaml`` and ``X`` for the same entry."""
    return normalise_zoo_name(name)


def get_entry(name: str, extra: Iterable[Path] = ()) -> ZooEntry:
    """The entry called ``name``; the error lists the closest names when there is none."""
    entries = all_entries(extra)
    key = normalise_name(name)
    if key in entries:
        return entries[key]
    same_base = [n for n in entries if n.rsplit("/", 1)[-1] == key.rsplit("/", 1)[-1]]
    close = same_base or difflib.get_close_matches(key, list(entries), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else "; see `d2stream zoo list`"
    raise ZooError(f"no model-zoo entry named {name!r}{hint}", key="--model-zoo")
