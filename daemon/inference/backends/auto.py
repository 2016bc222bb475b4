"""``auto``: the fastest installed backend for this model on this machine, found by measuring.

The first time a model is loaded with ``backend="auto"``, every installed backend loads it and
runs a few inferences on the same synthetic network input (one untimed, then up to
:data:`TIMED_RUNS` timed ones within :data:`TIME_BUDGET_S`); the one with the lowest median
wins and stays loaded. The choice and its figures go to a small JSON file in the choice folder
(the model's optimised-graph cache, ``model.optimized_cache``, when there is one; else
``<d2stream cache>/backends``), keyed by the model's content hash, the backends' package
versions, the CPU and the settings that change the timing (threads, spinning, input size).
Later loads with the same key read the file and load only the chosen backend; any change of the
key measures again. A file that cannot be read or written is logged and measured around, never
fatal. With a single usable backend there is nothing to choose and nothing is measured; a JIT
engine (OpenVINO) is not a candidate where the process may not map executable memory
(systemd's ``MemoryDenyWriteExecute=yes``, as in ``systemd/d2stream.service``).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import logging
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from d2common.errors import ModelError
from d2common.onnx_files import model_files
from daemon.inference.backends.base import (
    BACKENDS,
    JIT_BACKENDS,
    Backend,
    BackendOptions,
    available_backends,
    create_backend,
    executable_memory_allowed,
)

log = logging.getLogger(__name__)

AUTO = "auto"
WARMUP_RUNS = 1
TIMED_RUNS = 3
# Timed runs stop once this many seconds went by (after at least one), so that a slow model on
# a slow CPU (seconds per inference) still starts within the worker's start timeout.
TIME_BUDGET_S = 3.0
CHOICE_VERSION = 1

Feeds = dict[str, np.ndarray]


@dataclass(frozen=True)
class ChoiceKey:
    """Everything the measured winner depends on; a change of any field measures again."""

    model_sha256: str
    backends: dict[str, str]  # candidate name -> version of its engine package
    cpu: str
    num_threads: int | None
    spin_wait: bool
    input: str  # what decides the network input size (e.g. "min_size=None max_size=None")

    def digest(self) -> str:
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class Choice:
    """The chosen backend and the median seconds per inference of each candidate."""

    backend: str
    seconds: dict[str, float] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)  # candidates that failed to load/run

    def describe(self) -> str:
        parts = [f"{n} {s * 1e3:.0f} ms" for n, s in sorted(self.seconds.items(),
                                                              key=lambda kv: kv[1])]
        parts += [f"{n} unusable ({e})" for n, e in self.errors.items()]
        return ", ".join(parts) or "nothing measured"


def candidates() -> list[str]:
    """The backends ``auto`` chooses among: every installed one that can run in this process
    (a JIT engine cannot where executable memory is forbidden), in registry order."""
    names = available_backends()
    if not executable_memory_allowed():
        jit = [n for n in names if n in JIT_BACKENDS]
        if jit:
            log.info("backend auto: %s not a candidate: this process may not map executable "
                     "memory, which its run-time kernel compiler needs", ", ".join(jit))
        names = [n for n in names if n not in JIT_BACKENDS]
    return names


def backend_versions(names: list[str]) -> dict[str, str]:
    """The installed version of each backend's engine package (read without importing it)."""
    versions = {}
    for name in names:
        package = BACKENDS[name][1]
        try:
            versions[name] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "unknown"
    return versions


CPU_NAME_KEYS = ("model name", "Model", "Hardware", "CPU part")  # x86 and ARM /proc/cpuinfo


def cpu_signature(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """Architecture, CPU model and the number of usable cores."""
    found: dict[str, str] = {}
    try:
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, sep, value = line.partition(":")
            if sep and key.strip() in CPU_NAME_KEYS:
                found.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    name = next((found[k] for k in CPU_NAME_KEYS if k in found),
                platform.processor() or "unknown CPU")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{platform.machine()} {name} x{cores}"


def file_sha256(path: Path) -> str:
    """SHA-256 of the model file; an external-data side file adds its size and mtime (hashing
    gigabytes at every start would cost seconds)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    for extra in model_files(path)[1:]:
        st = extra.stat()
        digest.update(f"{extra.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return digest.hexdigest()


def choice_dir(options: BackendOptions) -> Path:
    """Where choices are cached: the optimised-graph cache, else the d2stream cache folder."""
    if options.optimized_cache:
        return Path(options.optimized_cache)
    from d2common.zoo_names import cache_dir  # noqa: PLC0415

    return cache_dir() / "backends"


def choice_file(folder: Path, model: Path, key: ChoiceKey) -> Path:
    return folder / f"{model.stem}-backend-{key.digest()}.json"


def read_choice(path: Path, key: ChoiceKey) -> Choice | None:
    """The cached choice for ``key``; None (logged) when absent, unreadable or stale."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("version") != CHOICE_VERSION or data.get("key") != asdict(key):
            log.info("backend choice %s is for another model or machine; measuring again", path)
            return None
        choice = Choice(str(data["backend"]), {str(k): float(v) for k, v in
                                               data["seconds"].items()},
                        {str(k): str(v) for k, v in data.get("errors", {}).items()})
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        log.warning("backend choice %s is unreadable (%s: %s); measuring again", path,
                    type(exc).__name__, exc)
        return None
    if choice.backend not in key.backends:
        log.warning("backend choice %s names %r, which is not installed; measuring again", path,
                    choice.backend)
        return None
    return choice


def write_choice(path: Path, key: ChoiceKey, choice: Choice) -> None:
    """Atomically write the choice; a folder that cannot be written is logged, not fatal."""
    data = {"version": CHOICE_VERSION, "key": asdict(key), "backend": choice.backend,
            "seconds": choice.seconds, "errors": choice.errors}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        log.warning("cannot cache the backend choice in %s (%s); the next start measures again",
                    path, exc)
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def time_backend(backend: Backend, feeds: Feeds) -> float:
    """Median seconds of one inference (after :data:`WARMUP_RUNS` untimed runs)."""
    for _ in range(WARMUP_RUNS):
        backend.run(feeds)
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < TIMED_RUNS and (not times or time.perf_counter() - start < TIME_BUDGET_S):
        t0 = time.perf_counter()
        backend.run(feeds)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure(names: list[str], model: Path, options: BackendOptions,
            make_feeds: Callable[[Backend], Feeds]) -> tuple[Backend, Choice]:
    """Load and time each backend in turn; the fastest stays loaded, the others are dropped
    (so that at most two copies of the model are in memory at once)."""
    best: Backend | None = None
    choice = Choice(backend="")
    feeds: Feeds | None = None
    first_error: ModelError | None = None
    for name in names:
        try:
            backend = create_backend(name, model, options)
        except ModelError as exc:
            log.warning("backend auto: %s cannot load %s (%s); not a candidate", name, model, exc)
            choice.errors[name] = str(exc)
            first_error = first_error or exc
            continue
        feeds = feeds if feeds is not None else make_feeds(backend)
        try:
            seconds = time_backend(backend, feeds)
        except Exception as exc:  # noqa: BLE001 - each engine raises its own types
            log.warning("backend auto: %s failed to run %s (%s); not a candidate", name,
                        model, exc)
            choice.errors[name] = f"run failed: {exc}"
            continue
        choice.seconds[name] = seconds
        if best is None or seconds < choice.seconds[choice.backend]:
            best, choice.backend = backend, name
        del backend
    if best is None:
        raise first_error or ModelError(f"{model}: no inference backend is installed")
    return best, choice


def load_fastest(model_path: str | os.PathLike, options: BackendOptions,
                 make_feeds: Callable[[Backend], Feeds], input_desc: str) -> Backend:
    """The fastest installed backend with ``model_path`` loaded (see the module docstring).

    ``make_feeds(backend)`` gives the input to time on (from the first loaded backend's
    metadata); ``input_desc`` names what decides its size, for the cache key.
    """
    model = Path(model_path)
    names = candidates()
    if len(names) <= 1:
        if not names:
            raise ModelError("no inference backend is installed (pip install onnxruntime)")
        log.info("backend auto: %s (the only usable one here)", names[0])
        return create_backend(names[0], model, options)
    if not model.is_file():
        raise ModelError(f"model file not found: {model}")
    key = ChoiceKey(file_sha256(model), backend_versions(names), cpu_signature(),
                    options.num_threads, options.spin_wait, input_desc)
    path = choice_file(choice_dir(options), model, key)
    cached = read_choice(path, key)
    if cached is not None:
        log.info("backend auto: %s for %s (cached choice %s: %s)", cached.backend, model.name,
                 path, cached.describe())
        return create_backend(cached.backend, model, options)
    backend, choice = measure(names, model, options, make_feeds)
    log.info("backend auto: %s for %s (measured, median of up to %d runs each: %s)",
             choice.backend, model.name, TIMED_RUNS, choice.describe())
    write_choice(path, key, choice)
    return backend
