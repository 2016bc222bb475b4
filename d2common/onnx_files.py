"""Which files make up one ONNX model on disk (shared by the daemon and the export tools).

A model whose weights are over protobuf's 2 GiB limit cannot be one ONNX file: d2stream then
writes the graph to ``NAME.onnx`` and every weight to ``NAME.onnx.data`` beside it (ONNX
*external data*, one side file, referenced by a path relative to the model). ONNX Runtime and
OpenVINO find the side file on their own; code that copies, hashes or removes a model uses
:func:`model_files` so the two files travel together.
"""

from __future__ import annotations

from pathlib import Path

DATA_SUFFIX = ".data"


def data_file(model: Path) -> Path:
    """Where d2stream keeps the external weights of ``NAME.onnx``: ``NAME.onnx.data``."""
    return model.with_name(model.name + DATA_SUFFIX)


def model_files(model: Path) -> list[Path]:
    """``model`` and, when it has one, its external-data side file."""
    side = data_file(model)
    return [model, side] if side.is_file() else [model]


def has_external_data(model: Path) -> bool:
    """Whether ``model`` keeps its weights in a side file written by d2stream."""
    return data_file(model).is_file()
