"""The backend interface and the factory that picks an implementation by name."""

from __future__ import annotations

import importlib
import importlib.util
import os
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from d2common.errors import ModelError

DEFAULT_BACKEND = "onnxruntime"
# name -> (module implementing it, the Python package it needs)
BACKENDS: dict[str, tuple[str, str]] = {
    "onnxruntime": ("daemon.inference.backends.ort_backend", "onnxruntime"),
    "openvino": ("daemon.inference.backends.openvino_backend", "openvino"),
}


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
    """

    num_threads: int | None = None
    optimized_cache: str | None = None
    spin_wait: bool = True


class Backend(Protocol):
    """A loaded model: ``run`` maps input arrays to every graph output by name."""

    name: str
    output_names: list[str]
    metadata_props: dict[str, str]

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...


def available_backends() -> list[str]:
    """Backends whose engine package is installed."""
    return [n for n, (_, pkg) in BACKENDS.items() if importlib.util.find_spec(pkg) is not None]


def create_backend(name: str, model_path: str | os.PathLike,
                   options: BackendOptions | None = None) -> Backend:
    """Load ``model_path`` with backend ``name``; raises :class:`ModelError` when impossible."""
    if name not in BACKENDS:
        raise ModelError(f"unknown inference backend {name!r}; choose one of "
                         f"{', '.join(BACKENDS)}")
    module_name, package = BACKENDS[name]
    if importlib.util.find_spec(package) is None:
        raise ModelError(f"backend {name!r} needs the Python package {package!r}; install it "
                         f"with: pip install 'd2stream[{name}]'")
    module = importlib.import_module(module_name)
    return module.load(model_path, options or BackendOptions())
