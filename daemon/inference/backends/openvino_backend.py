"""OpenVINO CPU backend (``pip install 'd2stream[openvino]'``).

The same ``.onnx`` file is read by OpenVINO's ONNX front end and compiled for the CPU with fp32
inference precision: on CPUs with bf16 support OpenVINO would otherwise default to bf16, whose
8-bit mantissa moves scores by ~1e-2 and breaks parity with Detectron2.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import openvino as ov

from d2common.errors import ModelError
from daemon.inference.backends.base import BackendOptions


class OpenVinoBackend:
    """A model compiled by OpenVINO for the CPU."""

    name = "openvino"

    def __init__(self, model_path: str | os.PathLike, options: BackendOptions) -> None:
        path = Path(model_path)
        core = ov.Core()
        config: dict[str, object] = {"INFERENCE_PRECISION_HINT": "f32",
                                     "PERFORMANCE_HINT": "LATENCY"}
        if options.num_threads:
            config["INFERENCE_NUM_THREADS"] = int(options.num_threads)
        try:
            model = core.read_model(str(path))
            self.compiled = core.compile_model(model, "CPU", config)
        except Exception as exc:  # OpenVINO raises RuntimeError subclasses
            raise ModelError(f"{path}: cannot be loaded by OpenVINO ({exc})") from exc
        self.metadata_props = _metadata_props(model)
        self.output_names = _output_names(self.compiled, self.metadata_props)
        self._request = self.compiled.create_infer_request()

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        results = self._request.infer(feeds)
        return {n: np.asarray(results[out]) for n, out in zip(self.output_names,
                                                               self.compiled.outputs)}


def _output_names(compiled: ov.CompiledModel, props: dict[str, str]) -> list[str]:
    """The ONNX graph output names. OpenVINO may give an output several tensor names (the graph
    output and the value it copies); the graph's own name is the one the metadata lists."""
    listed: set[str] = set()
    for value in props.values():
        try:
            listed.update(json.loads(value).get("outputs", []))
        except (ValueError, AttributeError):
            continue
    names = []
    for out in compiled.outputs:
        candidates = sorted(out.get_names())
        known = [c for c in candidates if c in listed]
        names.append(known[0] if known else out.get_any_name())
    return names


def _metadata_props(model: ov.Model) -> dict[str, str]:
    """The ONNX ``metadata_props``, which OpenVINO keeps under ``rt_info['framework']``."""
    if not model.has_rt_info(["framework"]):
        return {}
    framework = model.get_rt_info()["framework"]
    return {str(k): str(v.astype(str)) for k, v in framework.items()}


def load(model_path: str | os.PathLike, options: BackendOptions) -> OpenVinoBackend:
    return OpenVinoBackend(model_path, options)
