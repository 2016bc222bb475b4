"""Reading the zip archive that ``torch.save`` writes (torch >= 1.6), without torch.

Layout: ``<prefix>/data.pkl`` (the pickle), ``<prefix>/data/<key>`` (raw storage bytes),
``<prefix>/byteorder`` ("little" or "big"), ``<prefix>/version`` and a few bookkeeping entries.
Every entry is checked before anything is read: supported compression, a claimed size that fits
the file (or, compressed, a plausible ratio) and at most ``max_bytes``. Storages are read only
when a tensor of the model dict needs them, each at most once, and released after its last use.
"""

from __future__ import annotations

import os
import zipfile
from collections import Counter
from collections.abc import Mapping
from typing import Any

import numpy as np

from export_tools.checkpoint._allowlist import allowed_globals
from export_tools.checkpoint._safe_pickle import clip, safe_loads, short_text
from export_tools.checkpoint._torch_compat import (
    StorageRef,
    TensorRef,
    parse_storage_pid,
    tensor_to_array,
)
from export_tools.errors import CheckpointError

# Deflate cannot compress better than about 1032:1, so a larger claimed ratio is a zip bomb.
_MAX_COMPRESSION_RATIO = 1100
_SUPPORTED_COMPRESSION = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)


def _check_entry(info: zipfile.ZipInfo, file_size: int, max_bytes: int) -> None:
    """CheckpointError if ``info`` claims sizes that the file cannot back or that exceed limits."""
    name = short_text(info.filename)
    if info.compress_type not in _SUPPORTED_COMPRESSION:
        raise CheckpointError(
            f"zip entry {name} uses unsupported compression method {info.compress_type}"
        )
    if info.flag_bits & 0x1:
        raise CheckpointError(f"zip entry {name} is encrypted")
    if info.file_size > max_bytes:
        raise CheckpointError(
            f"zip entry {name} claims {info.file_size} bytes, more than the limit of "
            f"{max_bytes} bytes (zip bomb or corrupt archive)"
        )
    if info.header_offset + info.compress_size > file_size:
        raise CheckpointError(f"zip entry {name} extends past the end of the file (truncated)")
    if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
        raise CheckpointError(
            f"zip entry {name} is stored uncompressed but claims {info.file_size} bytes "
            f"in {info.compress_size} (corrupt archive)"
        )
    if info.file_size > _MAX_COMPRESSION_RATIO * max(info.compress_size, 1):
        raise CheckpointError(
            f"zip entry {name} claims an implausible {info.file_size} bytes from "
            f"{info.compress_size} compressed bytes (zip bomb)"
        )


def _find_prefix(names: list[str]) -> str:
    """The folder holding ``data.pkl``; CheckpointError for other kinds of zip archives."""
    prefixes = [n[: -len("/data.pkl")] for n in names if n.endswith("/data.pkl")]
    prefixes = [p for p in prefixes if p and "/" not in p]
    if len(prefixes) == 1:
        prefix = prefixes[0]
        if f"{prefix}/constants.pkl" in names:
            raise CheckpointError(
                "this is a TorchScript archive (torch.jit.save), not a checkpoint; "
                "save the model's state_dict with torch.save instead"
            )
        return prefix
    if len(prefixes) > 1:
        raise CheckpointError(f"zip archive holds several data.pkl files ({len(prefixes)})")
    shown = ", ".join(short_text(n, 40) for n in names[:5])
    raise CheckpointError(
        f"zip archive without <folder>/data.pkl, so not a torch.save checkpoint "
        f"(entries: {shown or 'none'})"
    )


class TorchZipReader:
    """An open ``torch.save`` archive. Use as a context manager; ``load`` then ``arrays``."""

    def __init__(self, path: str, max_bytes: int) -> None:
        self._path = path
        self._max_bytes = max_bytes
        self._bytes_read = 0
        self._storages: dict[str, StorageRef] = {}
        file_size = os.path.getsize(path)
        try:
            self._zip = zipfile.ZipFile(path)
        except Exception as exc:  # zipfile raises several types for a damaged directory
            raise CheckpointError(f"corrupt or truncated zip archive: {clip(str(exc))}") from exc
        try:
            self._entries = {info.filename: info for info in self._zip.infolist()}
            for info in self._entries.values():
                _check_entry(info, file_size, max_bytes)
            self._prefix = _find_prefix(list(self._entries))
            self._little_endian = self._read_byteorder()
        except BaseException:
            self._zip.close()
            raise

    def __enter__(self) -> TorchZipReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._zip.close()

    def _read_entry(self, name: str) -> bytes:
        info = self._entries.get(name)
        if info is None:
            raise CheckpointError(f"zip entry {short_text(name)} is missing")
        self._bytes_read += info.file_size
        if self._bytes_read > self._max_bytes:
            raise CheckpointError(
                f"reading {short_text(name)} would exceed the limit of {self._max_bytes} bytes"
            )
        try:
            data = self._zip.read(info)
        except Exception as exc:  # BadZipFile (CRC), EOFError, zlib.error, OSError, ...
            raise CheckpointError(
                f"corrupt zip entry {short_text(name)}: {clip(str(exc))}"
            ) from exc
        if len(data) != info.file_size:
            raise CheckpointError(f"zip entry {short_text(name)} is shorter than it claims")
        return data

    def _read_byteorder(self) -> bool:
        name = f"{self._prefix}/byteorder"
        if name not in self._entries:
            return True  # archives from before torch 1.10 have no record: little-endian
        value = self._read_entry(name).decode("ascii", "replace").strip()
        if value not in ("little", "big"):
            raise CheckpointError(f"invalid byteorder record {short_text(value)}")
        return value == "little"

    def _persistent_load(self, pid: Any) -> StorageRef:
        key, dtype, numel = parse_storage_pid(pid)
        known = self._storages.get(key)
        if known is not None:
            if known.dtype != dtype or known.numel != numel:
                raise CheckpointError(f"storage '{key}' is referenced with different types")
            return known
        entry = self._entries.get(f"{self._prefix}/data/{key}")
        if entry is None:
            raise CheckpointError(
                f"storage '{key}' is missing from the archive (no entry {self._prefix}/data/{key})"
            )
        storage = StorageRef(key, dtype, numel)
        if entry.file_size != storage.nbytes:
            raise CheckpointError(
                f"storage '{key}' claims {numel} elements of {dtype.name} ({storage.nbytes} "
                f"bytes), but its zip entry holds {entry.file_size} bytes"
            )
        self._storages[key] = storage
        return storage

    @property
    def storage_keys(self) -> frozenset[str]:
        """Keys of every storage the pickle referenced (after ``load``)."""
        return frozenset(self._storages)

    def load(self) -> Any:
        """The unpickled top-level object; tensors in it are ``TensorRef`` placeholders."""
        data = self._read_entry(f"{self._prefix}/data.pkl")
        return safe_loads(data, allowed_globals(), self._persistent_load)

    def arrays(self, tensors: Mapping[str, TensorRef]) -> dict[str, np.ndarray]:
        """Materialise ``tensors`` (name -> ref), reading each storage once, shared or not."""
        for name, ref in tensors.items():
            try:
                ref.check_extent()
            except CheckpointError as exc:
                raise CheckpointError(f"tensor {short_text(name, 200)}: {exc}") from None
        total = sum(ref.loaded_nbytes for ref in tensors.values())
        if total > self._max_bytes:
            raise CheckpointError(
                f"the model tensors need {total} bytes, more than the limit of {self._max_bytes}"
            )
        uses = Counter(ref.storage.key for ref in tensors.values())
        cache: dict[str, np.ndarray] = {}
        result: dict[str, np.ndarray] = {}
        for name, ref in tensors.items():
            key = ref.storage.key
            if key not in cache:
                raw = self._read_entry(f"{self._prefix}/data/{key}")
                cache[key] = np.frombuffer(raw, dtype=np.uint8)
            result[name] = tensor_to_array(ref, cache[key], self._little_endian)
            uses[key] -= 1
            if uses[key] == 0:
                del cache[key]
        return result
