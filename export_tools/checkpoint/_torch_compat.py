"""Safe stand-ins for the torch globals in a ``torch.save`` pickle; torch itself is never imported.

Tensors are pickled as ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride,
requires_grad, backward_hooks[, metadata])`` where ``storage`` is a persistent id
``("storage", torch.FloatStorage, key, location, numel)`` naming the zip entry ``data/<key>``.
Here the rebuild functions return ``TensorRef`` placeholders and persistent ids become
``StorageRef`` placeholders: no data is read while unpickling. ``tensor_to_array`` later turns a
``TensorRef`` into an ndarray from the storage bytes, after checking that its extent fits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from export_tools.checkpoint._numpy_compat import check_addressable, check_shape
from export_tools.checkpoint._safe_pickle import SafeGlobal, short_text
from export_tools.errors import CheckpointError


@dataclass(frozen=True)
class TorchDtype:
    """A torch element type: ``stored`` is the numpy code of its bytes, ``loaded`` of the result."""

    name: str
    stored: str
    loaded: str

    @property
    def itemsize(self) -> int:
        return np.dtype(self.stored).itemsize


# torch dtype name -> (numpy code of the stored bytes, numpy code of the loaded array).
# bfloat16 is read as uint16 and widened to float32; bool is read as uint8 and compared with 0.
_DTYPES = {
    "float32": ("f4", "f4"),
    "float64": ("f8", "f8"),
    "float16": ("f2", "f2"),
    "bfloat16": ("u2", "f4"),
    "int64": ("i8", "i8"),
    "int32": ("i4", "i4"),
    "int16": ("i2", "i2"),
    "int8": ("i1", "i1"),
    "uint8": ("u1", "u1"),
    "uint16": ("u2", "u2"),
    "uint32": ("u4", "u4"),
    "uint64": ("u8", "u8"),
    "bool": ("u1", "b1"),
    "complex64": ("c8", "c8"),
    "complex128": ("c16", "c16"),
}
TORCH_DTYPES = {name: TorchDtype(name, *codes) for name, codes in _DTYPES.items()}

# Legacy typed storage classes (what torch.save still writes) and the dtype of their elements.
_STORAGE_TYPES = {
    "FloatStorage": "float32",
    "DoubleStorage": "float64",
    "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16",
    "LongStorage": "int64",
    "IntStorage": "int32",
    "ShortStorage": "int16",
    "CharStorage": "int8",
    "ByteStorage": "uint8",
    "BoolStorage": "bool",
    "ComplexFloatStorage": "complex64",
    "ComplexDoubleStorage": "complex128",
}


class StorageRef:
    """A storage named by a persistent id: zip entry ``data/<key>``, ``numel`` elements of dtype."""

    __slots__ = ("key", "dtype", "numel")

    def __init__(self, key: str, dtype: TorchDtype, numel: int) -> None:
        self.key = key
        self.dtype = dtype
        self.numel = numel

    @property
    def nbytes(self) -> int:
        return self.numel * self.dtype.itemsize

    def __setstate__(self, state: Any) -> None:
        raise CheckpointError("the pickle tries to modify a storage (BUILD on a storage)")


class TensorRef:
    """A tensor view of a storage: element ``offset``, ``size`` and ``stride`` in elements."""

    __slots__ = ("storage", "offset", "size", "stride", "dtype")

    def __init__(
        self, storage: Any, offset: Any, size: Any, stride: Any, dtype: TorchDtype | None = None
    ) -> None:
        if not isinstance(storage, StorageRef):
            raise CheckpointError(f"a tensor is built on {short_text(storage)}, not a storage")
        self.storage = storage
        self.size = check_shape(size, "tensor size")
        self.stride = check_shape(stride, "tensor stride")
        if len(self.stride) != len(self.size):
            raise CheckpointError(
                f"tensor size {self.size} and stride {self.stride} differ in rank"
            )
        self.offset = check_shape((offset,), "tensor storage offset")[0]
        self.dtype = dtype or storage.dtype

    def __setstate__(self, state: Any) -> None:
        raise CheckpointError("the pickle tries to set attributes on a tensor (BUILD on a tensor)")

    @property
    def numel(self) -> int:
        return math.prod(self.size)

    @property
    def loaded_nbytes(self) -> int:
        """Bytes of the array ``tensor_to_array`` returns."""
        return self.numel * np.dtype(self.dtype.loaded).itemsize

    def check_extent(self) -> None:
        """CheckpointError unless every element the view addresses lies inside its storage."""
        itemsize = max(self.dtype.itemsize, np.dtype(self.dtype.loaded).itemsize)
        check_addressable(self.size, itemsize, "tensor size")
        for step in self.stride:
            if step * itemsize >= 2**62:
                raise CheckpointError(
                    f"tensor stride {self.stride} of {self.dtype.name} is too big to address"
                )
        capacity = self.storage.nbytes // self.dtype.itemsize
        if self.numel == 0:
            needed = self.offset
        else:
            pairs = zip(self.size, self.stride, strict=True)
            needed = self.offset + 1 + sum((d - 1) * s for d, s in pairs)
        if needed > capacity:
            raise CheckpointError(
                f"tensor of size {self.size}, stride {self.stride} at offset {self.offset} needs "
                f"{needed} elements of {self.dtype.name}, but storage '{self.storage.key}' "
                f"holds {capacity}"
            )


def tensor_to_array(ref: TensorRef, raw: np.ndarray, little_endian: bool) -> np.ndarray:
    """The tensor ``ref`` as a C-contiguous native ndarray of shape ``ref.size``.

    ``raw`` is the storage's bytes, uint8 of length ``ref.storage.nbytes``.
    """
    ref.check_extent()
    loaded = np.dtype(ref.dtype.loaded)
    if ref.numel == 0:
        return np.zeros(ref.size, dtype=loaded)
    stored = np.dtype(ref.dtype.stored).newbyteorder("<" if little_endian else ">")
    count = ref.storage.nbytes // stored.itemsize
    base = raw[: count * stored.itemsize].view(stored)[ref.offset :]
    strides = tuple(s * stored.itemsize for s in ref.stride)
    view = as_strided(base, shape=ref.size, strides=strides, writeable=False)
    if ref.dtype.name == "bfloat16":
        widened = view.astype(np.uint32, order="C") << np.uint32(16)
        return widened.view(np.float32)
    if ref.dtype.name == "bool":
        return np.ascontiguousarray(view != 0)
    return np.array(view, dtype=loaded, order="C", copy=True)


def _dtype_of(value: Any, what: str) -> TorchDtype:
    if isinstance(value, SafeGlobal) and isinstance(value.tag, TorchDtype):
        return value.tag
    raise CheckpointError(f"{what} is {short_text(value)}, not a torch type")


def parse_storage_pid(pid: Any) -> tuple[str, TorchDtype, int]:
    """``(key, dtype, numel)`` from a ``("storage", type, key, location, numel)`` id."""
    if not isinstance(pid, tuple) or len(pid) != 5:
        raise CheckpointError(f"unsupported persistent id {short_text(pid)} in the pickle")
    typename, storage_type, key, location, numel = (
        part.decode("ascii", "replace") if isinstance(part, bytes) else part for part in pid
    )
    if typename != "storage":
        raise CheckpointError(f"unsupported persistent id kind {short_text(typename)}")
    dtype = _dtype_of(storage_type, "storage type")
    if not isinstance(key, str) or not key or len(key) > 256 or not isinstance(location, str):
        raise CheckpointError(f"invalid storage key {short_text(key)} in a persistent id")
    if isinstance(numel, bool) or not isinstance(numel, int) or not 0 <= numel < 2**62:
        raise CheckpointError(f"storage '{key}' has an invalid element count {short_text(numel)}")
    return key, dtype, numel


def _rebuild_tensor(storage: Any, offset: Any, size: Any, stride: Any) -> TensorRef:
    return TensorRef(storage, offset, size, stride)


def _rebuild_tensor_v2(
    storage: Any, offset: Any, size: Any, stride: Any, *_grad_hooks_metadata: Any
) -> TensorRef:
    if len(_grad_hooks_metadata) > 3:
        raise CheckpointError("too many arguments for torch._utils._rebuild_tensor_v2")
    return TensorRef(storage, offset, size, stride)


def _rebuild_tensor_v3(
    storage: Any,
    offset: Any,
    size: Any,
    stride: Any,
    requires_grad: Any,
    backward_hooks: Any,
    dtype: Any,
    metadata: Any = None,
) -> TensorRef:
    return TensorRef(storage, offset, size, stride, _dtype_of(dtype, "tensor dtype"))


def _rebuild_parameter(data: Any, requires_grad: Any, backward_hooks: Any, state: Any = None):
    if not isinstance(data, TensorRef):
        raise CheckpointError(f"a parameter wraps {short_text(data)}, not a tensor")
    return data


def torch_globals() -> dict[str, SafeGlobal]:
    """Allow-list entries for ``torch.save`` pickles: rebuild functions, storage types, dtypes."""
    table: dict[str, SafeGlobal] = {}

    def add(qualname: str, impl: Any = None, tag: Any = None) -> None:
        table[qualname] = SafeGlobal(qualname, impl, tag)

    add("torch._utils._rebuild_tensor", _rebuild_tensor)
    add("torch._utils._rebuild_tensor_v2", _rebuild_tensor_v2)
    add("torch._utils._rebuild_tensor_v3", _rebuild_tensor_v3)
    add("torch._utils._rebuild_parameter", _rebuild_parameter)
    add("torch._utils._rebuild_parameter_with_state", _rebuild_parameter)
    for storage_name, dtype_name in _STORAGE_TYPES.items():
        add(f"torch.{storage_name}", tag=TORCH_DTYPES[dtype_name])
    for qualname in ("torch.UntypedStorage", "torch.storage.UntypedStorage"):
        add(qualname, tag=TORCH_DTYPES["uint8"])
    for dtype in TORCH_DTYPES.values():
        add(f"torch.{dtype.name}", tag=dtype)
    return table
