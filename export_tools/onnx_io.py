"""Writing and checking ONNX files, large ones included.

One ONNX file is one protobuf message, and protobuf refuses messages over 2 GiB: ViTDet-H and
MViTv2-H (2.5-2.7 GiB of float32 weights) cannot be written that way. Such a model is written
with ONNX *external data*: the graph in ``NAME.onnx``, every weight over 1 KiB in
``NAME.onnx.data`` beside it (:mod:`d2common.onnx_files`). Smaller models stay one file unless
asked otherwise. Files are written to a temporary folder next to the target and moved into
place, the side file first, so a crash never leaves a half-written model under the final name.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import tempfile
from pathlib import Path

import onnx

from d2common.onnx_files import data_file
from export_tools.errors import ExportError

log = logging.getLogger(__name__)

#: the largest serialised model written as one file: protobuf's 2 GiB message limit, less room
SINGLE_FILE_LIMIT = 2**31 - 2**26
#: tensors at least this large go to the side file (smaller ones stay in the graph)
EXTERNAL_MIN_BYTES = 1024


def weight_bytes(model: onnx.ModelProto) -> int:
    """Bytes of ``model``'s initializers, from their shapes (``ModelProto.ByteSize`` serialises
    the model, which fails over 2 GiB)."""
    total = 0
    for t in model.graph.initializer:
        itemsize = onnx.helper.tensor_dtype_to_np_dtype(t.data_type).itemsize
        total += itemsize * math.prod(t.dims)
    return total


def too_large_for_one_file(model: onnx.ModelProto) -> bool:
    """Whether ``model``'s weights pass :data:`SINGLE_FILE_LIMIT` (the graph itself is small)."""
    return weight_bytes(model) > SINGLE_FILE_LIMIT


def check_model(model: onnx.ModelProto) -> bool:
    """Run the ONNX checker (full check) on ``model`` in memory; returns False, having checked
    nothing, when the model is too large for that (check the written file with
    :func:`check_model_file` instead)."""
    if too_large_for_one_file(model):
        return False
    onnx.checker.check_model(model, full_check=True)
    return True


def check_model_file(path: Path) -> None:
    """Run the ONNX checker (full check) on a written model, external data included."""
    onnx.checker.check_model(str(path), full_check=True)


def save_model(model: onnx.ModelProto, path: str | os.PathLike,
               external_data: bool | None = None) -> Path:
    """Write ``model`` to ``path``; returns ``path``.

    ``external_data``: None writes the weights to ``path.data`` only when the model is too
    large for one file; True always; False never (an :class:`ExportError` when it is too large).
    A stale side file from an earlier export to the same path is removed. With external data,
    ``model``'s initializers are changed in place to point into the side file (their bytes leave
    memory), so use the written file afterwards, not ``model``.
    """
    out = Path(path)
    large = too_large_for_one_file(model)
    if external_data is False and large:
        raise ExportError(f"{out}: the model is {weight_bytes(model) / 2**30:.2f} GiB, over the "
                          "2 GiB limit of one ONNX file; write it with external data")
    external = large if external_data is None else external_data
    out.parent.mkdir(parents=True, exist_ok=True)
    side = data_file(out)
    with tempfile.TemporaryDirectory(prefix=f".{out.name}-", dir=out.parent) as tmp:
        staged = Path(tmp) / out.name
        if external:
            onnx.save_model(model, str(staged), save_as_external_data=True,
                            all_tensors_to_one_file=True, location=side.name,
                            size_threshold=EXTERNAL_MIN_BYTES)
            check_model_file(staged)
            staged_side = data_file(staged)
            staged_side.chmod(staged.stat().st_mode & 0o777)  # onnx writes it owner-only
            os.replace(staged_side, side)
        else:
            onnx.save_model(model, str(staged))
        os.replace(staged, out)
    if not external and side.exists():
        side.unlink()
        log.info("removed %s (the model is one file now)", side)
    return out


def copy_model(source: Path, target: Path) -> Path:
    """Copy a model and its side file; the side file keeps its name, which the graph refers to."""
    target.parent.mkdir(parents=True, exist_ok=True)
    side = data_file(source)
    if side.is_file():
        shutil.copyfile(side, target.parent / side.name)
    shutil.copyfile(source, target)
    return target
