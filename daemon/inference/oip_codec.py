"""Tensors on the wire of the Open Inference Protocol (KServe v2) REST API.

Both encodings of the protocol: JSON tensors (``data`` as a flat list) and the binary tensor
data extension (a JSON header of ``Inference-Header-Content-Length`` bytes, then the raw
little-endian tensor bytes in order, each tensor's size in ``parameters.binary_data_size``).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from d2common.errors import ModelError

HEADER_LENGTH = "Inference-Header-Content-Length"

DTYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype(bool), "UINT8": np.dtype("<u1"), "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"), "INT32": np.dtype("<i4"), "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"), "FP32": np.dtype("<f4"), "FP64": np.dtype("<f8"),
}
_NAMES = {v: k for k, v in DTYPES.items()}


def datatype_of(array: np.ndarray) -> str:
    """The protocol's datatype name of ``array``."""
    name = _NAMES.get(array.dtype.newbyteorder("<") if array.dtype.byteorder == ">"
                      else array.dtype)
    if name is None:
        raise ModelError(f"tensor dtype {array.dtype} has no Open Inference Protocol datatype")
    return name


def encode(tensors: dict[str, np.ndarray], key: str, binary: bool,
           extra: dict[str, Any] | None = None) -> tuple[bytes, int | None]:
    """A request/response body with ``tensors`` under ``key`` (``inputs`` or ``outputs``).

    Returns the body and the JSON header length (None for a plain JSON body)."""
    entries, blobs = [], []
    for name, value in tensors.items():
        array = np.ascontiguousarray(value)
        entry: dict[str, Any] = {"name": name, "shape": list(array.shape),
                                 "datatype": datatype_of(array)}
        if binary:
            blob = array.astype(DTYPES[entry["datatype"]], copy=False).tobytes()
            entry["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            entry["data"] = array.ravel().tolist()
        entries.append(entry)
    header = json.dumps({**(extra or {}), key: entries}).encode()
    if not binary:
        return header, None
    return header + b"".join(blobs), len(header)


def decode(body: bytes, header_length: int | None, key: str,
           where: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The JSON header and the tensors under ``key`` of a body; ``where`` names it in errors."""
    size = len(body) if header_length is None else header_length
    if not 0 <= size <= len(body):
        raise ModelError(f"{where}: {HEADER_LENGTH} {size} exceeds the body ({len(body)} bytes)")
    try:
        header = json.loads(body[:size])
    except (ValueError, UnicodeError) as exc:
        raise ModelError(f"{where}: the JSON header is not valid JSON ({exc})") from exc
    entries = header.get(key) if isinstance(header, dict) else None
    if not isinstance(entries, list):
        raise ModelError(f"{where}: no {key!r} list in the JSON header")
    tensors: dict[str, np.ndarray] = {}
    offset = size
    for entry in entries:
        array, offset = _tensor(entry, body, offset, where)
        tensors[str(entry["name"])] = array
    return header, tensors


def _tensor(entry: Any, body: bytes, offset: int, where: str) -> tuple[np.ndarray, int]:
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        raise ModelError(f"{where}: a tensor entry without a name")
    name = entry["name"]
    dtype = DTYPES.get(str(entry.get("datatype")))
    shape = entry.get("shape")
    if dtype is None:
        raise ModelError(f"{where}: tensor {name!r} has unknown datatype {entry.get('datatype')!r}")
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise ModelError(f"{where}: tensor {name!r} has an invalid shape {shape!r}")
    count = int(np.prod(shape)) if shape else 1
    size = (entry.get("parameters") or {}).get("binary_data_size")
    if size is not None:
        if not isinstance(size, int) or size != count * dtype.itemsize or \
                offset + size > len(body):
            raise ModelError(f"{where}: tensor {name!r}: binary_data_size {size!r} does not fit "
                             f"shape {shape} {entry['datatype']}")
        array = np.frombuffer(body, dtype, count, offset).reshape(shape)
        return array, offset + size
    data = entry.get("data")
    if not isinstance(data, list):
        raise ModelError(f"{where}: tensor {name!r} has neither data nor binary_data_size")
    try:
        array = np.asarray(data, dtype=dtype).reshape(shape)
    except (ValueError, TypeError) as exc:
        raise ModelError(f"{where}: tensor {name!r}: data does not fit shape {shape}") from exc
    return array, offset
