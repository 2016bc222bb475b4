"""A Triton Inference Server model repository for an exported ``.onnx`` file.

Layout (Triton's documented repository layout)::

    DIR/<name>/config.pbtxt      platform onnxruntime_onnx, inputs/outputs, parameters
    DIR/<name>/1/model.onnx

The input's H and W are dynamic (-1); ``max_batch_size: 0`` because the graph takes one image
(its batch dim is part of ``dims``). The d2stream metadata of the model (class names, input
format, sizes: the ONNX ``metadata_props``) become ``parameters`` of the model config, so that a
``model.backend: remote`` daemon can read them from Triton's model config endpoint.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import onnx

from d2common.errors import ModelError
from export_tools.onnx_io import copy_model

# ONNX TensorProto element types -> Triton's TYPE_* names
_TYPES = {1: "TYPE_FP32", 2: "TYPE_UINT8", 3: "TYPE_INT8", 5: "TYPE_INT16", 6: "TYPE_INT32",
          7: "TYPE_INT64", 9: "TYPE_BOOL", 10: "TYPE_FP16", 11: "TYPE_FP64"}
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def _dims(value: onnx.ValueInfoProto) -> list[int]:
    return [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else -1
            for d in value.type.tensor_type.shape.dim]


def _tensor(value: onnx.ValueInfoProto, where: str) -> str:
    elem = value.type.tensor_type.elem_type
    if elem not in _TYPES:
        raise ModelError(f"{where}: tensor {value.name!r} has ONNX type {elem}, which Triton's "
                         "ONNX Runtime backend does not take")
    dims = ", ".join(str(d) for d in _dims(value))
    return (f"  {{\n    name: {json.dumps(value.name)}\n    data_type: {_TYPES[elem]}\n"
            f"    dims: [ {dims} ]\n  }}")


def config_pbtxt(model: onnx.ModelProto, name: str, where: str) -> str:
    """The text of ``config.pbtxt`` for ``model`` served as ``name``."""
    inputs = ",\n".join(_tensor(v, where) for v in model.graph.input)
    outputs = ",\n".join(_tensor(v, where) for v in model.graph.output)
    params = "".join(f"parameters: {{\n  key: {json.dumps(p.key)}\n  value: {{ string_value: "
                     f"{json.dumps(p.value)} }}\n}}\n" for p in model.metadata_props)
    return (f"name: {json.dumps(name)}\nplatform: \"onnxruntime_onnx\"\nmax_batch_size: 0\n"
            f"input [\n{inputs}\n]\noutput [\n{outputs}\n]\n"
            "instance_group [ { kind: KIND_CPU, count: 1 } ]\n" + params)


def write_repository(model_path: str | Path, repository: str | Path,
                     name: str | None = None) -> Path:
    """Write ``repository/<name>/`` for ``model_path``; returns the model's folder."""
    model_path = Path(model_path)
    name = name or model_path.stem
    if not _NAME.match(name):
        raise ModelError(f"--triton-repository: model name {name!r} must match {_NAME.pattern}")
    try:
        model = onnx.load(str(model_path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError and others
        raise ModelError(f"{model_path}: not a readable ONNX model ({exc})") from exc
    folder = Path(repository) / name
    (folder / "1").mkdir(parents=True, exist_ok=True)
    copy_model(model_path, folder / "1" / "model.onnx")  # external data keeps its file name
    (folder / "config.pbtxt").write_text(config_pbtxt(model, name, str(model_path)),
                                         encoding="utf-8")
    return folder
