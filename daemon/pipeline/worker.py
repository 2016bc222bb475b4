"""The model worker process: loads the ``Predictor`` once, then infers frames from shared memory.

Protocol on the duplex pipe (messages are small tuples; frames never cross it):

- worker -> parent at start: ``("ready", pid, metadata: dict)`` or ``("error", kind, message)``;
- parent -> worker: ``(token, segment name, shape)`` per frame, ``None`` to stop;
- worker -> parent: ``("result", token, prediction: dict of arrays, inference seconds, stats)``
  or ``("failed", token, message, stats)``; ``stats``: the remote backend's counters or None.

Predictions travel as the fields of :class:`CompactPrediction` (boxes, scores, classes and the
28x28 mask probabilities of the detections above ``min_score``), never as full-size masks.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import signal
import sys
import time
from collections import OrderedDict
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.shared_memory import SharedMemory
from typing import Any

import numpy as np

from daemon.inference.backends.base import RemoteOptions
from daemon.pipeline.shm_ring import attach, frame_view

log = logging.getLogger(__name__)

_MAX_ATTACHED = 8


@dataclass(frozen=True)
class WorkerSpec:
    """What the worker process needs (picklable; sent once at spawn)."""

    model_path: str
    num_threads: int | None
    min_score: float
    log_level: int = logging.INFO
    backend: str = "auto"
    optimized_cache: str | None = None
    spin_wait: bool = True
    remote: RemoteOptions | None = None


def pack_prediction(prediction: Any, min_score: float) -> dict[str, Any]:
    """The fields of a ``CompactPrediction`` restricted to scores >= ``min_score``."""
    # select() filters only the per-instance fields (semantic logits are per image, even when
    # their class count happens to equal the number of detections).
    kept = prediction.select(np.asarray(prediction.scores) >= min_score)
    out: dict[str, Any] = {}
    for f in dataclasses.fields(kept):
        value = getattr(kept, f.name)
        out[f.name] = np.ascontiguousarray(value) if isinstance(value, np.ndarray) else value
    return out


def unpack_prediction(fields: dict[str, Any]) -> Any:
    """A ``CompactPrediction`` rebuilt from :func:`pack_prediction`'s dict."""
    cls, known = _compact_fields()
    return cls(**{k: v for k, v in fields.items() if k in known})


@functools.cache
def _compact_fields() -> tuple[type, frozenset[str]]:
    """``CompactPrediction`` and its field names, looked up once (not per frame)."""
    from daemon.inference.predictor import CompactPrediction  # noqa: PLC0415

    return CompactPrediction, frozenset(f.name for f in dataclasses.fields(CompactPrediction))


def _configure_process(level: int) -> None:
    # The parent decides when the worker stops (SIGTERM reaches the whole process group, and a
    # Ctrl-C in a terminal too); the worker leaves when told or when the pipe closes.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(levelname)s %(name)s[worker]: %(message)s")


def _load(conn: Connection, spec: WorkerSpec) -> Any | None:
    try:
        from daemon.inference.predictor import Predictor  # noqa: PLC0415 - heavy, worker only

        predictor = Predictor(spec.model_path, num_threads=spec.num_threads,
                              backend=spec.backend, optimized_cache=spec.optimized_cache,
                              spin_wait=spec.spin_wait, remote=spec.remote)
    except Exception as exc:  # reported to the parent, which decides what to do
        conn.send(("error", type(exc).__name__, str(exc)))
        return None
    conn.send(("ready", os.getpid(), dataclasses.asdict(predictor.metadata)))
    return predictor


class _Attachments:
    """Segments the worker has opened, most recent last (old ones closed)."""

    def __init__(self) -> None:
        self._open: OrderedDict[str, SharedMemory] = OrderedDict()

    def get(self, name: str) -> SharedMemory:
        if name in self._open:
            self._open.move_to_end(name)
            return self._open[name]
        segment = attach(name)
        self._open[name] = segment
        while len(self._open) > _MAX_ATTACHED:
            _, old = self._open.popitem(last=False)
            old.close()
        return segment

    def close(self) -> None:
        for segment in self._open.values():
            segment.close()
        self._open.clear()


def _infer(predictor: Any, segments: _Attachments, msg: tuple, min_score: float) -> tuple:
    token, name, shape = msg
    start = time.perf_counter()
    try:
        image = frame_view(segments.get(name), tuple(shape))
        prediction = predictor.predict_compact(image)
        del image
        packed = pack_prediction(prediction, min_score)
    except Exception as exc:  # one bad frame must not end the worker
        return ("failed", token, f"{type(exc).__name__}: {exc}", _backend_stats(predictor))
    return ("result", token, packed, time.perf_counter() - start, _backend_stats(predictor))


def _backend_stats(predictor: Any) -> dict[str, int] | None:
    """The remote backend's counters (requests, retries, failures, fallbacks), else None."""
    stats = getattr(predictor.backend, "stats", None)
    return dict(stats) if isinstance(stats, dict) else None


def worker_main(conn: Connection, spec: WorkerSpec) -> None:
    """Entry point of the worker process (multiprocessing ``spawn`` target)."""
    _configure_process(spec.log_level)
    predictor = _load(conn, spec)
    if predictor is None:
        return
    segments = _Attachments()
    try:
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                break  # the parent is gone
            if msg is None:
                break
            conn.send(_infer(predictor, segments, msg, spec.min_score))
    finally:
        segments.close()
