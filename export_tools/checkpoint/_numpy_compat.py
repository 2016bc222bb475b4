"""Safe stand-ins for the numpy globals that pickled arrays use.

A pickled ``np.ndarray`` is ``_reconstruct(ndarray, (0,), b"b")`` followed by BUILD with
``(version, shape, dtype, is_fortran, raw_bytes)``; its dtype is ``dtype("f4", False, True)``
followed by BUILD with ``(3, "<", None, None, None, -1, -1, 0)``. Protocol 5 uses
``_frombuffer(buffer, dtype, shape, order)`` instead. Here those calls build inert placeholders
(``DtypeSpec``, ``ArrayBuilder``) that check every claimed size against the bytes actually present;
real arrays are made only afterwards, by ``ArrayBuilder.to_array``, from plain numeric bytes.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from export_tools.checkpoint._safe_pickle import SafeGlobal, short_text
from export_tools.errors import CheckpointError

# numpy type codes an array in a checkpoint may have: booleans, integers, floats, complex.
_ALLOWED_CODES = frozenset(
    {"b1", "i1", "u1", "i2", "u2", "i4", "u4", "i8", "u8", "f2", "f4", "f8", "c8", "c16"}
)
_MAX_NDIM = 64


def check_shape(shape: Any, what: str) -> tuple[int, ...]:
    """``shape`` as a tuple of non-negative ints, or CheckpointError."""
    if not isinstance(shape, (tuple, list)) or len(shape) > _MAX_NDIM:
        raise CheckpointError(f"{what} is not a tuple of at most {_MAX_NDIM} sizes")
    dims = tuple(shape)
    for dim in dims:
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 0 or dim >= 2**62:
            raise CheckpointError(f"{what} has an invalid size {short_text(dim)}")
    return dims


_MAX_ARRAY_BYTES = 2**62


def check_addressable(shape: tuple[int, ...], itemsize: int, what: str) -> None:
    """CheckpointError unless numpy can describe an array of ``shape`` (zero sizes included)."""
    span = itemsize
    for dim in shape:
        span *= max(dim, 1)
        if span >= _MAX_ARRAY_BYTES:
            raise CheckpointError(
                f"{what} {shape} of {itemsize}-byte elements is too big to address "
                f"(more than 2**62 bytes)"
            )


class DtypeSpec:
    """A checked numpy dtype description: type code and byte order, nothing else."""

    __slots__ = ("code", "byteorder")

    def __init__(self, code: str) -> None:
        self.code = code
        self.byteorder = "="

    def __setstate__(self, state: Any) -> None:
        # (version, byteorder, subarray, names, fields, elsize, alignment, flags[, metadata])
        if not isinstance(state, tuple) or len(state) not in (8, 9) or state[0] not in (3, 4):
            raise CheckpointError("unsupported numpy dtype state in the pickle")
        byteorder = state[1]
        if byteorder not in ("<", ">", "|", "="):
            raise CheckpointError(f"invalid numpy byte order {short_text(byteorder)}")
        if any(part is not None for part in state[2:5]):
            raise CheckpointError("structured or sub-array numpy dtypes are not allowed")
        self.byteorder = byteorder

    def to_numpy(self) -> np.dtype:
        dtype = np.dtype(self.code)
        if self.byteorder in ("<", ">") and dtype.itemsize > 1:
            dtype = dtype.newbyteorder(self.byteorder)
        return dtype


def _as_bytes(data: Any, what: str) -> bytes | bytearray:
    if isinstance(data, (bytes, bytearray)):
        return data
    if isinstance(data, str):  # Python 2 str, decoded as latin-1 by the unpickler
        return data.encode("latin-1")
    raise CheckpointError(f"{what} is {short_text(data)}, expected raw bytes")


class ArrayBuilder:
    """An array whose shape, dtype and bytes were checked; ``to_array`` makes the ndarray."""

    __slots__ = ("shape", "dtype", "fortran", "data")

    def __init__(self) -> None:
        self.shape: tuple[int, ...] = ()
        self.dtype: DtypeSpec | None = None
        self.fortran = False
        self.data: bytes | bytearray = b""

    def __setstate__(self, state: Any) -> None:
        if self.dtype is not None:
            raise CheckpointError("the pickle sets the state of a numpy array twice")
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise CheckpointError("unsupported numpy array state in the pickle")
        if len(state) == 5:
            if state[0] != 1:
                raise CheckpointError("unsupported numpy array state version")
            state = state[1:]
        shape, dtype, fortran, data = state
        if not isinstance(fortran, int):
            raise CheckpointError("numpy array state has an invalid Fortran-order flag")
        self.fill(shape, dtype, bool(fortran), data)

    def fill(self, shape: Any, dtype: Any, fortran: bool, data: Any) -> None:
        dims = check_shape(shape, "numpy array shape")
        if not isinstance(dtype, DtypeSpec):
            raise CheckpointError(f"numpy array dtype is {short_text(dtype)}, not a dtype")
        raw = _as_bytes(data, "numpy array data")
        need = math.prod(dims) * np.dtype(dtype.code).itemsize
        if len(raw) != need:
            raise CheckpointError(
                f"numpy array of shape {dims} and dtype {dtype.code} needs {need} bytes, "
                f"but the pickle holds {len(raw)}"
            )
        self.shape, self.dtype, self.fortran, self.data = dims, dtype, fortran, raw

    def to_array(self) -> np.ndarray:
        """A C-contiguous, writable, native-byte-order copy; shape ``self.shape``."""
        if self.dtype is None:
            raise CheckpointError("a numpy array in the pickle never received its data")
        dtype = self.dtype.to_numpy()
        check_addressable(self.shape, dtype.itemsize, "numpy array shape")
        if not self.data:
            return np.zeros(self.shape, dtype=dtype.newbyteorder("="))
        flat = np.frombuffer(self.data, dtype=dtype)
        array = flat.reshape(self.shape, order="F" if self.fortran else "C")
        return np.array(array, dtype=dtype.newbyteorder("="), order="C", copy=True)


def _dtype(obj: Any, align: Any = False, copy: Any = True) -> DtypeSpec:
    if not isinstance(obj, str) or obj not in _ALLOWED_CODES:
        raise CheckpointError(
            f"numpy dtype {short_text(obj)} is not allowed (only bool, integer, float and complex)"
        )
    return DtypeSpec(obj)


def _reconstruct(subtype: Any, shape: Any, dtype_code: Any) -> ArrayBuilder:
    if not (isinstance(subtype, SafeGlobal) and subtype.tag == "ndarray"):
        raise CheckpointError(
            f"numpy _reconstruct may only build numpy.ndarray, not {short_text(subtype)}"
        )
    return ArrayBuilder()


def _frombuffer(buffer: Any, dtype: Any, shape: Any, order: Any) -> ArrayBuilder:
    if order not in ("C", "F"):
        raise CheckpointError(f"invalid numpy array order {short_text(order)}")
    builder = ArrayBuilder()
    builder.fill(shape, dtype, order == "F", buffer)
    return builder


def _scalar(dtype: Any, data: Any = None) -> int | float | complex | bool:
    if not isinstance(dtype, DtypeSpec):
        raise CheckpointError(f"numpy scalar dtype is {short_text(dtype)}, not a dtype")
    raw = _as_bytes(data, "numpy scalar data")
    numpy_dtype = dtype.to_numpy()
    if len(raw) != numpy_dtype.itemsize:
        raise CheckpointError(f"numpy scalar of dtype {dtype.code} has {len(raw)} bytes")
    return np.frombuffer(raw, dtype=numpy_dtype)[0].item()


def _codecs_encode(text: Any, encoding: Any = "utf-8") -> bytes:
    # Protocol 2 pickles written by Python 3 store bytes as encode(latin-1 text, "latin1").
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise CheckpointError("_codecs.encode is only allowed for latin-1 encoded bytes")
    return text.encode("latin-1")


def numpy_globals() -> dict[str, SafeGlobal]:
    """Allow-list entries for pickled numpy arrays, dtypes and scalars (numpy 1.x and 2.x)."""
    table: dict[str, SafeGlobal] = {}

    def add(qualname: str, impl: Any = None, tag: Any = None) -> None:
        table[qualname] = SafeGlobal(qualname, impl, tag)

    add("numpy.ndarray", tag="ndarray")
    add("numpy.dtype", _dtype)
    add("_codecs.encode", _codecs_encode)
    for core in ("numpy.core", "numpy._core"):
        add(f"{core}.multiarray._reconstruct", _reconstruct)
        add(f"{core}.multiarray.scalar", _scalar)
        add(f"{core}.numeric._frombuffer", _frombuffer)
    return table
