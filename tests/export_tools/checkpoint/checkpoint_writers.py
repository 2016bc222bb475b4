"""Hand-written writers for test checkpoints: pickle opcodes and the torch.save zip layout.

Nothing here imports torch: ``dumps`` emits protocol-2 opcodes itself, so a test can name any
global (``torch._utils._rebuild_tensor_v2``, ``os.system``) and any persistent id it needs.
"""

from __future__ import annotations

import struct
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Global:
    """A ``GLOBAL module name`` opcode."""

    module: str
    name: str


@dataclass(frozen=True)
class Call:
    """``func(*args)`` through REDUCE."""

    func: Any
    args: tuple[Any, ...]


@dataclass(frozen=True)
class PersId:
    """A persistent id (BINPERSID)."""

    pid: Any


@dataclass(frozen=True)
class Build:
    """``obj`` followed by BUILD with ``state``."""

    obj: Any
    state: Any


@dataclass(frozen=True)
class Raw:
    """Opcode bytes emitted verbatim."""

    opcodes: bytes


@dataclass(frozen=True)
class Py2Str:
    """A Python 2 ``str`` (BINSTRING): raw bytes the unpickler decodes with latin-1."""

    data: bytes


def _emit_int(value: int) -> bytes:
    if 0 <= value < 256:
        return b"K" + bytes([value])
    if -(2**31) <= value < 2**31:
        return b"J" + struct.pack("<i", value)
    raw = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(raw)]) + raw


def _emit_items(items: list[Any]) -> bytes:
    return b"".join(_emit(item) for item in items)


def _emit_mapping(mapping: dict[Any, Any]) -> bytes:
    if isinstance(mapping, OrderedDict):
        head = _emit(Call(Global("collections", "OrderedDict"), ()))
    else:
        head = b"}"
    if not mapping:
        return head
    pairs = [part for key, value in mapping.items() for part in (key, value)]
    return head + b"(" + _emit_items(pairs) + b"u"


def _emit_special(obj: Any) -> bytes:
    if isinstance(obj, Global):
        return b"c" + f"{obj.module}\n{obj.name}\n".encode()
    if isinstance(obj, Call):
        return _emit(obj.func) + _emit(tuple(obj.args)) + b"R"
    if isinstance(obj, PersId):
        return _emit(obj.pid) + b"Q"
    if isinstance(obj, Build):
        return _emit(obj.obj) + _emit(obj.state) + b"b"
    if isinstance(obj, Raw):
        return obj.opcodes
    if isinstance(obj, Py2Str):
        return b"T" + struct.pack("<I", len(obj.data)) + obj.data
    raise TypeError(f"cannot emit {type(obj).__name__}")


def _emit(obj: Any) -> bytes:
    if obj is None:
        return b"N"
    if isinstance(obj, bool):
        return b"\x88" if obj else b"\x89"
    if isinstance(obj, int):
        return _emit_int(obj)
    if isinstance(obj, float):
        return b"G" + struct.pack(">d", obj)
    if isinstance(obj, str):
        data = obj.encode("utf-8")
        return b"X" + struct.pack("<I", len(data)) + data
    if isinstance(obj, bytes):
        return b"B" + struct.pack("<I", len(obj)) + obj
    if isinstance(obj, tuple):
        return b"(" + _emit_items(list(obj)) + b"t" if obj else b")"
    if isinstance(obj, list):
        return b"]" + (b"(" + _emit_items(obj) + b"e" if obj else b"")
    if isinstance(obj, dict):
        return _emit_mapping(obj)
    return _emit_special(obj)


def dumps(obj: Any) -> bytes:
    """A protocol-2 pickle of ``obj`` (plain data plus the marker classes above)."""
    return b"\x80\x02" + _emit(obj) + b"."


# ---- torch.save layout -------------------------------------------------------------------------

STORAGE_TYPES = {
    "float32": "FloatStorage",
    "float64": "DoubleStorage",
    "float16": "HalfStorage",
    "int64": "LongStorage",
    "int32": "IntStorage",
    "int8": "CharStorage",
    "uint8": "ByteStorage",
    "bool": "BoolStorage",
}


def storage_id(key: str, storage_type: str, numel: int, module: str = "torch") -> PersId:
    """The persistent id torch writes for storage ``key``."""
    return PersId(("storage", Global(module, storage_type), key, "cpu", numel))


def tensor(
    storage: PersId,
    size: tuple[int, ...],
    stride: tuple[int, ...] | None = None,
    offset: int = 0,
) -> Call:
    """``torch._utils._rebuild_tensor_v2`` as torch.save pickles it (contiguous by default)."""
    if stride is None:
        stride = tuple(int(np.prod(size[i + 1 :])) for i in range(len(size)))
    hooks = Call(Global("collections", "OrderedDict"), ())
    rebuild = Global("torch._utils", "_rebuild_tensor_v2")
    return Call(rebuild, (storage, offset, tuple(size), tuple(stride), False, hooks))


def array_tensor(key: str, array: np.ndarray) -> tuple[Call, bytes]:
    """A contiguous tensor holding ``array`` in storage ``key``, and that storage's bytes."""
    storage_type = STORAGE_TYPES[array.dtype.name]
    pid = storage_id(key, storage_type, array.size)
    data = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes()
    return tensor(pid, array.shape), data


def write_torch_zip(
    path: Path,
    data_pkl: bytes,
    storages: dict[str, bytes],
    prefix: str = "archive",
    byteorder: str | None = "little",
    compression: int = zipfile.ZIP_STORED,
) -> Path:
    """Write the archive ``torch.save`` would: data.pkl, byteorder, data/<key>, version."""
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        archive.writestr(f"{prefix}/data.pkl", data_pkl)
        if byteorder is not None:
            archive.writestr(f"{prefix}/byteorder", byteorder)
        for key, data in storages.items():
            archive.writestr(f"{prefix}/data/{key}", data)
        archive.writestr(f"{prefix}/version", "3\n")
    return path


def write_state_dict_zip(path: Path, arrays: dict[str, np.ndarray], **top: Any) -> Path:
    """A torch zip of ``{"model": arrays, **top}``, or of ``arrays`` alone when ``top`` is empty."""
    model: OrderedDict[str, Any] = OrderedDict()
    storages: dict[str, bytes] = {}
    for index, (name, array) in enumerate(arrays.items()):
        model[name], storages[str(index)] = array_tensor(str(index), array)
    obj = {"model": model, **top} if top else model
    return write_torch_zip(path, dumps(obj), storages)


def patch_central_size(path: Path, entry: str, file_size: int) -> None:
    """Overwrite the uncompressed size that the central directory claims for ``entry``."""
    blob = bytearray(path.read_bytes())
    name = entry.encode()
    position = blob.find(b"PK\x01\x02")
    while position != -1:
        name_length = struct.unpack_from("<H", blob, position + 28)[0]
        if blob[position + 46 : position + 46 + name_length] == name:
            struct.pack_into("<I", blob, position + 24, file_size)
            path.write_bytes(bytes(blob))
            return
        position = blob.find(b"PK\x01\x02", position + 4)
    raise AssertionError(f"no central directory record for {entry}")


def corrupt_entry_data(path: Path, *entries: str) -> None:
    """Flip the first data byte of each (stored) entry, so that reading it fails its CRC check."""
    with zipfile.ZipFile(path) as archive:
        infos = [archive.getinfo(entry) for entry in entries]
    blob = bytearray(path.read_bytes())
    for info in infos:
        name_length, extra_length = struct.unpack_from("<HH", blob, info.header_offset + 26)
        blob[info.header_offset + 30 + name_length + extra_length] ^= 0xFF
    path.write_bytes(bytes(blob))
