"""Shared-memory ring slots that carry frames to the worker process without pickling them.

The parent owns the segments (creates and unlinks them); the worker attaches by name and reads
the frame in place. A slot grows (a new segment replaces it) when a larger frame arrives.
"""

from __future__ import annotations

import sys
from collections import deque
from multiprocessing import shared_memory

import numpy as np

_ALIGN = 1 << 16


def attach(name: str) -> shared_memory.SharedMemory:
    """Open an existing segment without registering it with this process' resource tracker."""
    if sys.version_info >= (3, 13):
        return shared_memory.SharedMemory(name=name, track=False)
    return shared_memory.SharedMemory(name=name)


def frame_view(segment: shared_memory.SharedMemory, shape: tuple[int, ...]) -> np.ndarray:
    """A uint8 array of ``shape`` over the start of ``segment`` (no copy)."""
    return np.ndarray(shape, dtype=np.uint8, buffer=segment.buf)


class ShmRing:
    """``slots`` reusable shared-memory buffers; not thread-safe (the supervisor locks)."""

    def __init__(self, slots: int, prefix: str = "d2s") -> None:
        self.prefix = prefix
        self._segments: list[shared_memory.SharedMemory | None] = [None] * slots
        self._free: deque[int] = deque(range(slots))

    @property
    def free_slots(self) -> int:
        return len(self._free)

    def acquire(self) -> int | None:
        """A free slot index, or ``None`` when all are in use."""
        return self._free.popleft() if self._free else None

    def release(self, slot: int) -> None:
        if slot not in self._free:
            self._free.append(slot)

    def release_all(self) -> None:
        self._free = deque(range(len(self._segments)))

    def write(self, slot: int, image: np.ndarray) -> tuple[str, tuple[int, ...]]:
        """Copy ``image`` (uint8) into ``slot``; returns ``(segment name, shape)``."""
        image = np.ascontiguousarray(image, dtype=np.uint8)
        segment = self._segments[slot]
        if segment is None or segment.size < image.nbytes:
            self._drop(slot)
            size = max(_ALIGN, -(-image.nbytes // _ALIGN) * _ALIGN)
            segment = shared_memory.SharedMemory(create=True, size=size)
            self._segments[slot] = segment
        frame_view(segment, image.shape)[...] = image
        return segment.name, tuple(image.shape)

    def _drop(self, slot: int) -> None:
        segment, self._segments[slot] = self._segments[slot], None
        if segment is not None:
            segment.close()
            segment.unlink()

    def close(self) -> None:
        """Unlink every segment."""
        for slot in range(len(self._segments)):
            self._drop(slot)
