"""What a registered builder tells :func:`~export_tools.modeling.supported.check_supported`:
the settings it reads that it cannot build, one :class:`Problem` per config key."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from export_tools.config import Config

NORMS = ("", "FrozenBN", "BN", "SyncBN", "GN", "nnSyncBN", "naiveSyncBN")
FPN_NORMS = (*NORMS, "LN")  # an FPN's convs take Detectron2's channels-first LayerNorm too
POOLER_TYPES = ("ROIAlignV2", "ROIAlign")


@dataclass(frozen=True)
class Problem:
    """One unsupported setting: the dotted key and a message."""

    key: str
    message: str


#: a builder's check: the problems of the settings it reads (none: it can build them)
Check = Callable[[Config], Iterator[Problem]]


def one_of(cfg: Config, key: str, allowed: Sequence[Any], why: str = "") -> Iterator[Problem]:
    """A problem when ``cfg[key]`` is not one of ``allowed`` (a bool never passes for a number)."""
    value = cfg.get(key)
    if value not in allowed or isinstance(value, bool) != isinstance(allowed[0], bool):
        listed = ", ".join(repr(a) for a in allowed)
        suffix = f" {why}" if why else ""
        yield Problem(key, f"unsupported value {value!r}{suffix}; supported: {listed}")
