"""The complete allow-list of globals a checkpoint pickle may name, and what each maps to."""

from __future__ import annotations

from collections import OrderedDict
from functools import lru_cache
from typing import Any

from export_tools.checkpoint._numpy_compat import numpy_globals
from export_tools.checkpoint._safe_pickle import SafeGlobal
from export_tools.checkpoint._torch_compat import torch_globals
from export_tools.errors import CheckpointError


def _iterable_arg(args: tuple[Any, ...], what: str) -> tuple[Any, ...]:
    """The optional single argument of a container constructor, as a plain sequence."""
    if not args:
        return ()
    if len(args) != 1 or not isinstance(args[0], (list, tuple, set, frozenset)):
        raise CheckpointError(f"{what} may only be built from a list or tuple")
    return tuple(args[0])


class _SealedOrderedDict(OrderedDict):  # type: ignore[type-arg]
    """An OrderedDict whose BUILD may only set ``_metadata`` (what torch's state_dict carries).

    Plain BUILD would set any instance attribute, e.g. replace ``items`` so the model looks empty.
    """

    def __setstate__(self, state: Any) -> None:
        if not (isinstance(state, dict) and set(state) <= {"_metadata"}):
            raise CheckpointError(
                "the pickle tries to set attributes on a collections.OrderedDict (BUILD on a "
                "dict; only torch's _metadata is allowed)"
            )
        self._metadata = state.get("_metadata")


def _ordered_dict(*args: Any) -> OrderedDict[Any, Any]:
    pairs = _iterable_arg(args, "collections.OrderedDict")
    if not all(isinstance(p, (list, tuple)) and len(p) == 2 for p in pairs):
        raise CheckpointError("collections.OrderedDict may only be built from key-value pairs")
    return _SealedOrderedDict(pairs)


def _set(*args: Any) -> set[Any]:
    return set(_iterable_arg(args, "builtins.set"))


def _frozenset(*args: Any) -> frozenset[Any]:
    return frozenset(_iterable_arg(args, "builtins.frozenset"))


def _empty_bytes(*args: Any) -> bytes:
    # Protocol 2 pickles written by Python 3 store b"" as bytes().
    if args:
        raise CheckpointError("builtins.bytes is only allowed without arguments")
    return b""


@lru_cache(maxsize=1)
def allowed_globals() -> dict[str, SafeGlobal]:
    """``"module.name" -> SafeGlobal`` for every global a checkpoint may use."""
    table = {
        "collections.OrderedDict": SafeGlobal("collections.OrderedDict", _ordered_dict),
        "builtins.set": SafeGlobal("builtins.set", _set),
        "builtins.frozenset": SafeGlobal("builtins.frozenset", _frozenset),
        "builtins.bytes": SafeGlobal("builtins.bytes", _empty_bytes),
    }
    table.update(numpy_globals())
    table.update(torch_globals())
    return table
