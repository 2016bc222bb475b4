"""Restricted unpickling of untrusted checkpoint pickles.

Defence in depth, in this order:

1. ``prescan`` walks the whole opcode stream with ``pickletools`` before anything is built: a
   truncated stream or a length field that claims more bytes than the stream holds is refused
   (so no large buffer is ever allocated for it), opcodes that instantiate classes or use the
   copyreg extension registry are refused, every ``GLOBAL`` name is checked against the
   allow-list, and ``_pickle_scan`` bounds memo indices and nesting depth.
2. ``RestrictedUnpickler.find_class`` resolves names (also those of ``STACK_GLOBAL``) only through
   the allow-list and never imports anything. Each allowed name maps to a ``SafeGlobal`` that wraps
   this package's own implementation; neither torch nor the real numpy reconstructors are called.
3. The only callables the stream can ever reach are those ``SafeGlobal`` objects, so REDUCE can
   call nothing else. A ``SafeGlobal`` is not a type (NEWOBJ fails on it) and refuses BUILD, and
   the placeholder objects our implementations return accept only the BUILD states they expect.
"""

from __future__ import annotations

import _compat_pickle
import io
import pickle
import pickletools
from collections.abc import Callable, Mapping
from typing import Any

from export_tools.checkpoint._pickle_scan import StructureScan
from export_tools.errors import CheckpointError

# Opcodes that create instances of classes or read the copyreg extension registry: no checkpoint
# needs them, and refusing them keeps the set of reachable code paths small.
_REFUSED_OPCODES = frozenset({"INST", "OBJ", "NEWOBJ", "NEWOBJ_EX", "EXT1", "EXT2", "EXT4"})

_MAX_NAME_CHARS = 120


def clip(text: str, limit: int = 160) -> str:
    """``text`` cut to at most ``limit`` characters."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def short_text(value: object, limit: int = 80) -> str:
    """A bounded, exception-free description of ``value`` for error messages."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        try:
            text = repr(value)
        except ValueError:  # ints beyond sys.get_int_max_str_digits()
            return "<huge int>"
        return text if len(text) <= limit else text[: limit - 3] + "..."
    if isinstance(value, SafeGlobal):
        return value.qualname
    return f"<{type(value).__name__}>"


class SafeGlobal:
    """What the unpickler receives for an allow-listed global name.

    ``impl`` is this package's replacement for the named callable, or None for names that may only
    appear as arguments (``numpy.ndarray``, torch storage types, torch dtypes). ``tag`` carries
    data for such names (e.g. the dtype a storage type stands for).
    """

    __slots__ = ("qualname", "impl", "tag")

    def __init__(self, qualname: str, impl: Callable[..., Any] | None = None, tag: Any = None):
        self.qualname = qualname
        self.impl = impl
        self.tag = tag

    def __call__(self, *args: Any) -> Any:
        if self.impl is None:
            raise CheckpointError(f"the pickle calls {self.qualname}, which may not be called")
        try:
            return self.impl(*args)
        except CheckpointError:
            raise
        except (TypeError, ValueError, OverflowError, MemoryError) as exc:
            raise CheckpointError(
                f"invalid call to {self.qualname}: {type(exc).__name__}: {clip(str(exc))}"
            ) from exc

    def __setstate__(self, state: Any) -> None:
        raise CheckpointError(f"the pickle tries to modify {self.qualname} (BUILD on a global)")

    def __repr__(self) -> str:
        return f"SafeGlobal({self.qualname})"


GlobalTable = Mapping[str, SafeGlobal]
PersistentLoader = Callable[[Any], Any]


def _python3_name(module: str, name: str) -> tuple[str, str]:
    """The Python 3 name of a global that a protocol < 3 pickle wrote under its Python 2 name."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


def resolve_global(table: GlobalTable, module: object, name: object) -> SafeGlobal:
    """The allow-listed object for ``module.name``; CheckpointError naming it otherwise."""
    if not isinstance(module, str) or not isinstance(name, str):
        raise CheckpointError("the pickle names a global with a non-string module or name")
    py3_module, py3_name = _python3_name(module, name)
    found = table.get(f"{py3_module}.{py3_name}")
    if found is None:
        qualname = f"{py3_module[:_MAX_NAME_CHARS]}.{py3_name[:_MAX_NAME_CHARS]}"
        written = f"{module[:_MAX_NAME_CHARS]}.{name[:_MAX_NAME_CHARS]}"
        alias = f" (written as {written})" if written != qualname else ""
        raise CheckpointError(
            f"refuses to import {qualname}{alias}: a checkpoint may only contain tensors, "
            "numpy arrays and plain containers (nothing was executed)"
        )
    return found


def prescan(data: bytes, table: GlobalTable) -> None:
    """Validate the opcode stream of ``data`` without building any object.

    Raises CheckpointError for a truncated or corrupt stream, a refused opcode, a ``GLOBAL``
    that is not allow-listed, a memo index out of line or nesting deeper than the scan allows.
    """
    scan = StructureScan()
    try:
        for opcode, arg, pos in pickletools.genops(io.BytesIO(data)):
            if opcode.name in _REFUSED_OPCODES:
                raise CheckpointError(
                    f"pickle opcode {opcode.name} at byte {pos} is not allowed in a checkpoint"
                )
            if opcode.name == "GLOBAL":
                module, _, name = str(arg).partition(" ")
                resolve_global(table, module, name)
            scan.step(opcode, arg, pos)
    except CheckpointError:
        raise
    except Exception as exc:  # pickletools reports every framing problem as ValueError
        raise CheckpointError(f"corrupt or truncated pickle: {clip(str(exc))}") from exc


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` whose globals come only from ``table``; never imports a module."""

    def __init__(
        self, data: bytes, table: GlobalTable, persistent: PersistentLoader | None
    ) -> None:
        super().__init__(io.BytesIO(data), encoding="latin1")
        self._table = table
        self._persistent = persistent

    def find_class(self, module: str, name: str) -> Any:
        return resolve_global(self._table, module, name)

    def persistent_load(self, pid: Any) -> Any:
        if self._persistent is None:
            raise CheckpointError(
                "the pickle references external storage (a persistent id), which only a "
                "torch zip checkpoint may do"
            )
        return self._persistent(pid)


def safe_loads(data: bytes, table: GlobalTable, persistent: PersistentLoader | None = None) -> Any:
    """Unpickle untrusted ``data`` with the allow-list ``table``.

    ``persistent`` resolves persistent ids (torch storages); without it they are refused.
    Any failure becomes a CheckpointError; nothing outside ``table`` is ever called.
    """
    prescan(data, table)
    unpickler = RestrictedUnpickler(data, table, persistent)
    try:
        return unpickler.load()
    except CheckpointError:
        raise
    except Exception as exc:
        raise CheckpointError(f"corrupt pickle: {type(exc).__name__}: {clip(str(exc))}") from exc
