"""Reading one ``_target_`` node of a LazyConfig tree, with key paths in every error."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from export_tools.errors import ConfigError
from export_tools.lazy.markers import ShapeSpecValue

_MISSING = object()


@dataclass(frozen=True)
class Node:
    """A mapping of the tree at ``path`` (dotted key path), read from file ``source``."""

    data: dict[str, Any]
    path: str
    source: str

    def fail(self, message: str, key: str | None = None) -> ConfigError:
        return ConfigError(message, key=self.key(key) if key else self.path or "<root>",
                           file=self.source)

    def key(self, key: str) -> str:
        """The dotted path of ``key`` in this node."""
        return f"{self.path}.{key}" if self.path else key

    def has(self, key: str) -> bool:
        return key in self.data

    def get(self, key: str, default: Any = None) -> Any:
        value = self.data.get(key, default)
        if isinstance(value, ShapeSpecValue):
            return dict(value.fields)
        return value

    def require(self, key: str) -> Any:
        if key not in self.data:
            raise self.fail("is required here", key)
        return self.get(key)

    def child(self, key: str) -> Node:
        value = self.require(key)
        if not isinstance(value, dict):
            raise self.fail(f"must be a mapping, got {type(value).__name__}", key)
        return Node(value, self.key(key), self.source)

    def item(self, key: str, index: int) -> Node:
        value = self.require(key)[index]
        if not isinstance(value, dict):
            raise self.fail(f"must be a mapping, got {type(value).__name__}", f"{key}.{index}")
        return Node(value, self.key(f"{key}.{index}"), self.source)

    def int(self, key: str, default: Any = _MISSING) -> int:
        value = self.require(key) if default is _MISSING else self.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(f"must be an integer, got {value!r}", key)
        return value

    def float(self, key: str, default: Any = _MISSING) -> float:
        value = self.require(key) if default is _MISSING else self.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(f"must be a number, got {value!r}", key)
        return float(value)

    def bool(self, key: str, default: Any = _MISSING) -> bool:
        value = self.require(key) if default is _MISSING else self.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(f"must be true or false, got {value!r}", key)
        return value

    def str(self, key: str, default: Any = _MISSING) -> str:
        value = self.require(key) if default is _MISSING else self.get(key, default)
        if not isinstance(value, str):
            raise self.fail(f"must be a string, got {value!r}", key)
        return value

    def list(self, key: str, default: Any = _MISSING) -> list[Any]:
        value = self.require(key) if default is _MISSING else self.get(key, default)
        if not isinstance(value, list):
            raise self.fail(f"must be a list, got {value!r}", key)
        return value

    def equals(self, key: str, expected: Any, why: str) -> None:
        """Refuse a setting the exporter does not build (its value differs from ``expected``)."""
        value = self.get(key, expected)
        if value != expected:
            raise self.fail(f"{value!r} is not supported ({why}); supported: {expected!r}", key)

    def only_keys(self, allowed: Iterable[str]) -> None:
        """Refuse keys this target does not take (a setting the exporter would not build)."""
        allowed = {"_target_", *allowed}
        for key in self.data:
            if key not in allowed:
                raise self.fail(f"unknown or unsupported argument of {self.target_name()}; "
                                f"known: {', '.join(sorted(allowed - {'_target_'}))}", key)

    def target_name(self) -> str:
        target = self.data.get("_target_")
        if not isinstance(target, str):
            raise self.fail("has no _target_ (a class or function name) string", "_target_")
        return target

    def target(self, table: dict[str, str], role: str) -> str:
        """The canonical kind of this node's ``_target_`` in ``table``; refused otherwise."""
        name = self.target_name()
        if name not in table:
            kinds = ", ".join(sorted(set(table.values())))
            raise self.fail(f"{role} {name!r} is not supported; supported: {kinds}", "_target_")
        return table[name]
