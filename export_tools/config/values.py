"""Checking one config value against its default, with yacs-like coercions.

Accepted: the default's own type; int where a float is expected (widened to float); a list or
tuple where a list is expected (stored as a list); null where the default is null or the key is
listed in ``OPTIONAL_TYPES``. A string where a number, bool or list is expected is read as a Python
literal first (``"(640, 672)"`` -> ``[640, 672]``, ``"1e-4"`` -> ``0.0001``), as Detectron2 does.
List items are checked against the kind of the default's items (numbers, strings, booleans) and
may not be nested deeper than the default.
"""

from __future__ import annotations

import ast
import math
from typing import Any

from export_tools.config.defaults import EMPTY_LIST_SHAPES, OPTIONAL_TYPES

# Limits on one value, so that hostile YAML (alias bombs, self-referencing lists) fails cleanly.
MAX_LIST_NODES = 100_000
MAX_LIST_DEPTH = 16
MAX_LITERAL_CHARS = 10_000


class ValueProblem(Exception):
    """A value that does not fit its key; the caller adds the key and the file."""


def type_name(value: Any) -> str:
    """A short user-facing name for the type of a YAML value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, dict):
        return "mapping"
    if isinstance(value, (list, tuple)):
        return "list"
    return type(value).__name__


def describe(value: Any) -> str:
    """``type (repr)`` with the repr shortened, for error messages."""
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type_name(value)} ({text})"


def coerce_value(key: str, value: Any, default: Any) -> Any:
    """Return ``value`` checked and coerced to fit ``default``; raise ValueProblem otherwise."""
    if isinstance(value, str) and not _takes_strings(key, default):
        value = _read_literal(value)
    if isinstance(value, tuple):
        value = list(value)
    if value is None:
        if default is None or key in OPTIONAL_TYPES:
            return None
        raise ValueProblem(f"expected {type_name(default)}, got null")
    if default is None:
        return _coerce_optional(key, value)
    if isinstance(default, bool) or isinstance(value, bool):
        if isinstance(default, bool) and isinstance(value, bool):
            return value
    elif isinstance(default, float) and isinstance(value, (int, float)):
        return _widen(value)
    elif isinstance(default, list) and isinstance(value, list):
        return _check_list(key, value, default)
    elif type(value) is type(default):
        return value
    raise ValueProblem(f"expected {type_name(default)}, got {describe(value)}")


def _takes_strings(key: str, default: Any) -> bool:
    return isinstance(default, str) or str in OPTIONAL_TYPES.get(key, ())


def _coerce_optional(key: str, value: Any) -> Any:
    allowed = OPTIONAL_TYPES.get(key, ())
    if float in allowed and isinstance(value, (int, float)) and not isinstance(value, bool):
        return _widen(value)
    if any(type(value) is t for t in allowed):
        return value
    names = " or ".join([t.__name__ for t in allowed] + ["null"])
    raise ValueProblem(f"expected {names}, got {describe(value)}")


def _widen(value: int | float) -> float:
    try:
        return float(value)
    except OverflowError:
        raise ValueProblem(f"number {describe(value)} is too large for a float") from None


def _read_literal(text: str) -> Any:
    """Read a string as a Python literal where Detectron2 would; keep it as-is otherwise."""
    if len(text) > MAX_LITERAL_CHARS:
        return text
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return text


def _leaf_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "str"
    return type_name(value)


def list_shape(key: str, default: list[Any]) -> tuple[str, int]:
    """(leaf kind, nesting depth) that items of the list at ``key`` must have."""
    if not default:
        return EMPTY_LIST_SHAPES.get(key, ("any", MAX_LIST_DEPTH))
    kinds: set[str] = set()
    depth = _scan(default, 1, kinds, [0])
    return (kinds.pop() if len(kinds) == 1 else "any"), depth


def _scan(items: list[Any], depth: int, kinds: set[str], count: list[int]) -> int:
    """Collect leaf kinds of a nested list; return its depth. Raises on hostile structures."""
    if depth > MAX_LIST_DEPTH:
        raise ValueProblem(f"list nested deeper than {MAX_LIST_DEPTH} levels")
    deepest = depth
    for item in items:
        count[0] += 1
        if count[0] > MAX_LIST_NODES:
            raise ValueProblem(f"list has more than {MAX_LIST_NODES} items in all")
        if isinstance(item, (list, tuple)):
            deepest = max(deepest, _scan(list(item), depth + 1, kinds, count))
        else:
            kinds.add(_leaf_kind(item))
    return deepest


def _check_list(key: str, value: list[Any], default: list[Any]) -> list[Any]:
    want_kind, max_depth = list_shape(key, default)
    kinds: set[str] = set()
    depth = _scan(value, 1, kinds, [0])
    if depth > max_depth:
        raise ValueProblem(
            f"expected a list nested at most {max_depth} level(s) deep, got {depth} levels"
        )
    bad = kinds - {want_kind} if want_kind != "any" else kinds - {"number", "str", "bool", "null"}
    if bad:
        expected = "plain values" if want_kind == "any" else f"{want_kind} items"
        raise ValueProblem(f"expected a list of {expected}, got a list with {sorted(bad)} items")
    return _plain_copy(value)


def _plain_copy(value: list[Any]) -> list[Any]:
    """Deep copy of a checked nested list, with tuples turned into lists."""
    return [_plain_copy(list(v)) if isinstance(v, (list, tuple)) else v for v in value]


def is_finite_number(value: Any) -> bool:
    """True for an int or float (not bool) that is finite."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return math.isfinite(value)
