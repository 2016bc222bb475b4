"""Checkpoint weights looked up by their Detectron2 names, with missing/unused/shape checks."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from export_tools.errors import WeightsError

# Buffers Detectron2 may save that carry nothing the graph needs (recomputed or config-driven).
_IGNORED_SUFFIXES = ("num_batches_tracked",)
_IGNORED_PREFIXES = ("pixel_mean", "pixel_std", "anchor_generator.", "proposal_generator.anchor_")


class WeightStore:
    """Hands out checkpoint arrays by name and remembers which were used.

    Missing and wrongly shaped weights are collected and reported together by :meth:`finish`,
    so one export run lists every problem instead of stopping at the first.
    """

    def __init__(self, state: Mapping[str, np.ndarray], source: str = "checkpoint") -> None:
        self._state = dict(state)
        self._used: set[str] = set()
        self._missing: list[str] = []
        self._bad_shape: list[str] = []
        self.source = source

    def has(self, name: str) -> bool:
        return name in self._state

    def has_prefix(self, prefix: str) -> bool:
        return any(k.startswith(prefix) for k in self._state)

    def get(self, name: str, shape: Sequence[int | None] | None = None) -> np.ndarray:
        """The array ``name`` as float32; records a problem (and returns zeros) when unusable."""
        if name not in self._state:
            if name not in self._missing:
                self._missing.append(name)
            return np.zeros([1 if s is None else s for s in (shape or [1])], np.float32)
        self._used.add(name)
        arr = np.asarray(self._state[name])
        if shape is not None and not _shape_matches(arr.shape, shape):
            want = tuple("?" if s is None else s for s in shape)
            problem = f"{name}: expected {want}, got {tuple(arr.shape)}"
            if problem not in self._bad_shape:
                self._bad_shape.append(problem)
            return np.zeros([1 if s is None else s for s in shape], np.float32)
        return arr.astype(np.float32)

    def get_optional(self, name: str,
                     shape: Sequence[int | None] | None = None) -> np.ndarray | None:
        return self.get(name, shape) if name in self._state else None

    def buffer(self, name: str) -> np.ndarray | None:
        """A buffer the graph could recompute, as the checkpoint holds it (dtype kept, marked
        used), or None when it holds none: stores that synthesise weights hold no buffers."""
        if name not in self._state:
            return None
        self._used.add(name)
        return np.asarray(self._state[name])

    def finish(self, allow_unused: Iterable[str] = ()) -> None:
        """Raise :class:`WeightsError` listing missing, misshapen and unexpected weights."""
        allowed = tuple(allow_unused)
        unused = sorted(
            k for k in self._state
            if k not in self._used
            and not k.endswith(_IGNORED_SUFFIXES)
            and not k.startswith(_IGNORED_PREFIXES + allowed)
        )
        problems = []
        if self._missing:
            problems.append(f"missing {len(self._missing)}: {_preview(self._missing)}")
        if self._bad_shape:
            problems.append(f"wrong shape {len(self._bad_shape)}: {_preview(self._bad_shape)}")
        if unused:
            problems.append(f"unexpected {len(unused)}: {_preview(unused)}")
        if problems:
            raise WeightsError(
                f"{self.source} does not match the architecture in the config ("
                + "; ".join(problems) + "). Is this checkpoint trained with this config?"
            )


class GeneratedWeights(WeightStore):
    """A store that makes every array the graph asks for (nothing is missing or unused).

    ``get(name, shape)`` records ``shape`` in :attr:`requested` and returns
    ``self._make(name, shape)``; subclasses say what the values are (synthetic weights for speed
    measurements, zeros to learn a graph's weight sizes).
    """

    def __init__(self, source: str) -> None:
        super().__init__({}, source=source)
        self.requested: dict[str, tuple[int, ...]] = {}

    def has(self, name: str) -> bool:
        return True

    def has_prefix(self, prefix: str) -> bool:
        return True

    def get(self, name: str, shape: Sequence[int | None] | None = None) -> np.ndarray:
        if shape is None or any(s is None for s in shape):
            raise ValueError(f"{self.source}: a concrete shape is needed for {name}")
        dims = tuple(int(s) for s in shape)  # type: ignore[arg-type]
        self.requested[name] = dims
        return self._make(name, dims)

    def get_optional(self, name: str,
                     shape: Sequence[int | None] | None = None) -> np.ndarray | None:
        return self.get(name, shape)

    def finish(self, allow_unused: Iterable[str] = ()) -> None:
        """Nothing can be missing or unused."""

    def _make(self, name: str, dims: tuple[int, ...]) -> np.ndarray:
        raise NotImplementedError


def _shape_matches(actual: Sequence[int], expected: Sequence[int | None]) -> bool:
    if len(actual) != len(expected):
        return False
    return all(e is None or a == e for a, e in zip(actual, expected))


def _preview(items: list[str], limit: int = 8) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", ... (+{len(items) - limit} more)" if len(items) > limit else "")
