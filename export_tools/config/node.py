"""``Config``: a read-only nested mapping with attribute access.

Sections are ``Config`` objects; leaves are plain values. Lists are stored as tuples inside and
handed out as fresh lists, so a caller may modify what it gets without changing the config.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import yaml

_MISSING = object()


class Config(Mapping[str, Any]):
    """A read-only Detectron2 config: ``cfg.MODEL.RESNETS.DEPTH``, ``cfg["MODEL"]["FPN"]``,
    ``cfg["MODEL.FPN.NORM"]``, ``cfg.get("MODEL.FPN.NORM")``.

    ``source`` is the file it was loaded from (None when built from a mapping).
    """

    __slots__ = ("_data", "_prefix", "_source")

    def __init__(
        self, data: Mapping[str, Any], *, source: str | None = None, _prefix: str = ""
    ) -> None:
        items: dict[str, Any] = {}
        for key, value in data.items():
            if not isinstance(key, str):
                raise TypeError(f"config keys must be strings, got {key!r} in {_prefix or 'root'}")
            items[key] = _freeze(value, f"{_prefix}{key}.", source)
        object.__setattr__(self, "_data", items)
        object.__setattr__(self, "_prefix", _prefix)
        object.__setattr__(self, "_source", source)

    @property
    def source(self) -> str | None:
        """The config file this was loaded from, if any."""
        return self._source

    # Mapping protocol -------------------------------------------------------------------------

    def __getitem__(self, key: str) -> Any:
        value = self._lookup(key)
        if value is _MISSING:
            raise KeyError(f"config has no key {self._prefix}{key}")
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: str, default: Any = None) -> Any:
        """Value at a key or a dotted key path (``"MODEL.FPN.NORM"``), else ``default``."""
        value = self._lookup(key)
        return default if value is _MISSING else value

    def _lookup(self, key: str) -> Any:
        if not isinstance(key, str):
            return _MISSING
        node: Any = self
        for part in key.split("."):
            if not isinstance(node, Config) or part not in node._data:
                return _MISSING
            node = node._data[part]
        return _thaw(node)

    # Attribute access ---------------------------------------------------------------------------

    def __getattr__(self, name: str) -> Any:
        data = object.__getattribute__(self, "_data")
        if name in data:
            return _thaw(data[name])
        prefix = object.__getattribute__(self, "_prefix")
        raise AttributeError(f"config has no key {prefix}{name}")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"Config is read-only (tried to set {self._prefix}{name})")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Config is read-only (tried to delete {self._prefix}{name})")

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self._data))

    # Conversions --------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A plain nested dict copy (lists as lists)."""
        return {
            k: v.to_dict() if isinstance(v, Config) else _thaw(v) for k, v in self._data.items()
        }

    def dump(self) -> str:
        """The config as YAML text, keys sorted, as Detectron2's ``cfg.dump()`` writes it."""
        return yaml.safe_dump(self.to_dict(), default_flow_style=False, sort_keys=True)

    def __repr__(self) -> str:
        return f"Config({self.to_dict()!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.to_dict(), self._source, self._prefix))

    def __copy__(self) -> Config:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Config:
        return self


def _rebuild(data: dict[str, Any], source: str | None, prefix: str) -> Config:
    return Config(data, source=source, _prefix=prefix)


def _freeze(value: Any, prefix: str, source: str | None) -> Any:
    if isinstance(value, Config):
        return Config(value.to_dict(), source=source, _prefix=prefix)
    if isinstance(value, Mapping):
        return Config(value, source=source, _prefix=prefix)
    if isinstance(value, (list, tuple)):
        return tuple(_freeze_item(v) for v in value)
    return value


def _freeze_item(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return tuple(_freeze_item(v) for v in value)
    return value


def _thaw(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value
