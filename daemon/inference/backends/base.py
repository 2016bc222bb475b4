"""The backend interface and the factory that picks an implementation by name."""

from __future__ import annotations

import functools
import importlib
import importlib.util
import mmap
import os
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from d2common.errors import ModelError

# name -> (module implementing it, the Python package of its local engine; None: no local
# engine, it needs settings of its own and is not listed by available_backends)
BACKENDS: dict[str, tuple[str, str | None]] = {
    "onnxruntime": ("daemon.inference.backends.ort_backend", "onnxruntime"),
    "openvino": ("daemon.inference.backends.openvino_backend", "openvino"),
    # an Open Inference Protocol server (d2stream serve, Triton, KServe): stdlib HTTP only
    "remote": ("daemon.inference.backends.remote_backend", None),
}
# What a user may ask for: "auto" (the fastest installed one for the model on this machine,
# measured once and cached: daemon.inference.backends.auto) or one engine by name.
DEFAULT_BACKEND = "auto"
BACKEND_CHOICES: tuple[str, ...] = (DEFAULT_BACKEND, *BACKENDS)
# The engines that run the model in this process (what auto chooses among), and what a command
# without remote settings (predict, bench) may ask for.
LOCAL_BACKENDS: tuple[str, ...] = tuple(n for n, (_, pkg) in BACKENDS.items() if pkg is not None)
LOCAL_BACKEND_CHOICES: tuple[str, ...] = (DEFAULT_BACKEND, *LOCAL_BACKENDS)
# Engines that generate their kernels at run time (JIT) and so need memory that is writable
# and executable, which a sandbox may forbid (systemd's MemoryDenyWriteExecute=yes).
JIT_BACKENDS = frozenset({"openvino"})


@dataclass(frozen=True)
class RemoteOptions:
    """Where the ``remote`` backend sends network inputs (``model.remote`` in the config).

    Attributes:
        url: the server's base URL (``http://host:8000``).
        model_name / model_version: the model on the server (version None: the server's choice).
        timeout_s: per request. retries: extra attempts after a failure, ``backoff_s`` apart
            (doubling). token: bearer token the server requires, if any.
        fallback: ``drop`` (a frame the server cannot answer fails and is dropped) or ``local``
            (it is inferred by the local model file instead).
    """

    url: str
    model_name: str
    model_version: str | None = None
    timeout_s: float = 10.0
    retries: int = 2
    backoff_s: float = 0.2
    token: str | None = None
    fallback: str = "drop"


@dataclass(frozen=True)
class BackendOptions:
    """Engine settings common to the backends.

    Attributes:
        num_threads: worker threads for one inference (None: the engine's default, one per core).
        optimized_cache: ONNX Runtime only: a folder where the optimised graph is saved after
            the first load and read from on later loads (faster cold start). The file name
            carries the model's size and time stamp and ONNX Runtime's version, so a changed
            model or runtime never uses a stale graph. None: no cache.
        spin_wait: ONNX Runtime only: the inference threads busy-wait for work (between
            operators and after a run) instead of sleeping: faster; off saves power and heat.
        spin_after_run: ONNX Runtime, with ``spin_wait``: the threads also go on spinning
            after a run ends, waiting for the next one (fastest for back-to-back runs);
            ``False`` (``session.force_spinning_stop``): they sleep as soon as a run is over,
            leaving the cores to whatever the process does between runs. The daemon's worker
            keeps the default: on a loaded 2-vCPU VM this option raised the worker's busy
            share but not the frame rate (docs/performance.md, "Where the daemon's time goes").
    """

    num_threads: int | None = None
    optimized_cache: str | None = None
    spin_wait: bool = True
    remote: RemoteOptions | None = None
    spin_after_run: bool = True


class Backend(Protocol):
    """A loaded model: ``run`` maps input arrays to every graph output by name."""

    name: str
    output_names: list[str]
    metadata_props: dict[str, str]

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...


def available_backends() -> list[str]:
    """Local backends whose engine package is installed."""
    return [n for n, (_, pkg) in BACKENDS.items()
            if pkg is not None and importlib.util.find_spec(pkg) is not None]


@functools.cache
def executable_memory_allowed() -> bool:
    """Whether this process may map writable+executable memory (what a JIT needs)."""
    prot = getattr(mmap, "PROT_EXEC", None)
    if prot is None:
        return True  # no such protection model here (not Linux / BSD)
    try:
        region = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | prot)
    except OSError:
        return False
    region.close()
    return True


def create_backend(name: str, model_path: str | os.PathLike,
                   options: BackendOptions | None = None) -> Backend:
    """Load ``model_path`` with engine ``name`` (not ``auto``, which the ``Predictor`` resolves);
    raises :class:`ModelError` when impossible."""
    if name not in BACKENDS:
        raise ModelError(f"unknown inference backend {name!r}; choose one of "
                         f"{', '.join(BACKEND_CHOICES)}")
    module_name, package = BACKENDS[name]
    if package is not None and importlib.util.find_spec(package) is None:
        raise ModelError(f"backend {name!r} needs the Python package {package!r}; install it "
                         f"with: pip install 'd2stream[{name}]'")
    if name in JIT_BACKENDS and not executable_memory_allowed():
        raise ModelError(f"backend {name!r} compiles its kernels at run time, which needs "
                         "writable+executable memory, and this process may not map any (a "
                         "sandbox such as systemd's MemoryDenyWriteExecute=yes); use "
                         "onnxruntime or auto")
    module = importlib.import_module(module_name)
    return module.load(model_path, options or BackendOptions())
