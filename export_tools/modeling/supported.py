"""What the exporter can build: ``check_supported(cfg)`` refuses anything else by key.

The names it accepts are those of :mod:`export_tools.modeling.registry` (meta-architectures,
backbones, proposal generators, ROI heads and their box, mask and keypoint heads, semantic
heads), and each selected builder's own check names the settings it cannot build. Only the parts
of a config that the chosen architecture uses are checked (a RetinaNet config keeps Detectron2's
default ROI head keys, which nothing reads).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from export_tools.config.defaults import DEFAULTS
from export_tools.config.node import Config
from export_tools.config.values import is_finite_number
from export_tools.errors import ConfigError
from export_tools.modeling.checks import NORMS, Problem, one_of
from export_tools.modeling.meta_arch import build_model_graph  # noqa: F401 (registers builders)
from export_tools.modeling.registry import BACKBONES, META_ARCHS

__all__ = ["NORMS", "check_supported"]

INPUT_FORMATS = ("BGR", "RGB")


def check_supported(cfg: Config) -> None:
    """Raise ConfigError(key=...) for the first setting the exporter cannot build.

    The message lists the supported values, and names the other offending keys, if any.
    """
    _require_all_keys(cfg)
    problems = list(_problems(cfg))
    if not problems:
        return
    first = problems[0]
    message = first.message
    if len(problems) > 1:
        others = ", ".join(p.key for p in problems[1:])
        message += f" (also unsupported: {others})"
    raise ConfigError(message, key=first.key, file=cfg.source)


def _require_all_keys(cfg: Config) -> None:
    """A Config built by hand must still hold every default key, as load_config's do."""
    for key in _dotted_keys(DEFAULTS, ""):
        if key not in cfg:
            raise ConfigError(
                "config lacks this key; load configs with load_config, which fills in defaults",
                key=key,
                file=cfg.source,
            )


def _dotted_keys(tree: dict[str, Any], prefix: str) -> Iterator[str]:
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from _dotted_keys(value, f"{prefix}{key}.")
        else:
            yield prefix + key


def _problems(cfg: Config) -> Iterator[Problem]:
    yield from META_ARCHS.name_problems(cfg)
    yield from BACKBONES.problems(cfg)
    yield from _input_problems(cfg)
    yield from one_of(cfg, "MODEL.ANCHOR_GENERATOR.NAME", ("DefaultAnchorGenerator",),
                      "(rotated anchors are not supported)")
    yield from one_of(cfg, "MODEL.LOAD_PROPOSALS", (False,), "(precomputed proposals)")
    yield from one_of(cfg, "TEST.AUG.ENABLED", (False,), "(test-time augmentation)")
    arch = cfg.get(META_ARCHS.key)
    check = META_ARCHS.entry(arch).check if arch in META_ARCHS else None
    if check is not None:
        yield from check(cfg)


def _input_problems(cfg: Config) -> Iterator[Problem]:
    yield from one_of(cfg, "INPUT.FORMAT", INPUT_FORMATS)
    for key in ("INPUT.MIN_SIZE_TEST", "INPUT.MAX_SIZE_TEST"):
        if cfg.get(key) <= 0:
            yield Problem(key, f"must be > 0, got {cfg.get(key)}")
    for key in ("MODEL.PIXEL_MEAN", "MODEL.PIXEL_STD"):
        values = cfg.get(key)
        if len(values) != 3 or not all(is_finite_number(v) for v in values):
            yield Problem(key, f"must be 3 finite numbers (one per colour channel), got {values}")
        elif key == "MODEL.PIXEL_STD" and any(v == 0 for v in values):
            yield Problem(key, f"must not contain 0 (the input is divided by it), got {values}")
