"""Omegaconf-style interpolations in a LazyConfig tree, resolved by our own code.

``${a.b}`` is absolute (from the root); ``${.x}`` is key ``x`` of the node holding the value,
each further leading dot one level up (``${..x}``, ``${...a.b}``). A string that is exactly one
interpolation takes the referenced value (any type); interpolations inside a longer string are
replaced by the referenced value's text. Nothing else (resolvers such as ``${oc.env:...}``) is read.
"""

from __future__ import annotations

import re
from typing import Any

from export_tools.errors import ConfigError

_REF = re.compile(r"\$\{([^${}]*)\}")
_KEY = re.compile(r"^(\.*)([A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*)?$")
MAX_DEPTH = 32

Path = tuple[str, ...]


def resolve_interpolations(tree: dict[str, Any], source: str) -> dict[str, Any]:
    """A copy of ``tree`` with every interpolation replaced by its value."""
    return _Resolver(tree, source).walk(tree, ())


class _Resolver:
    def __init__(self, root: dict[str, Any], source: str) -> None:
        self.root, self.source = root, source

    def walk(self, node: Any, path: Path) -> Any:
        if isinstance(node, dict):
            return {k: self.walk(v, (*path, str(k))) for k, v in node.items()}
        if isinstance(node, list):
            return [self.walk(v, (*path, str(i))) for i, v in enumerate(node)]
        if isinstance(node, str) and "${" in node:
            return self.value(node, path, 0)
        return node

    def value(self, text: str, path: Path, depth: int) -> Any:
        if depth > MAX_DEPTH:
            self.fail(path, f"interpolation {text!r} does not end (a cycle?)")
        whole = _REF.fullmatch(text)
        if whole:
            return self.lookup(whole.group(1), path, depth)
        parts = _REF.split(text)
        if "${" in "".join(parts[0::2]):
            self.fail(path, f"unsupported interpolation syntax in {text!r}")
        out = [parts[0]]
        for ref, literal in zip(parts[1::2], parts[2::2]):
            out += [str(self.lookup(ref, path, depth)), literal]
        return "".join(out)

    def lookup(self, ref: str, path: Path, depth: int) -> Any:
        m = _KEY.match(ref.strip())
        if not m or not m.group(2):
            self.fail(path, f"unsupported interpolation ${{{ref}}} (only ${{a.b}} and "
                      "relative ${.a} / ${..a} references are read)")
        dots, keys = m.group(1), m.group(2).split(".")
        base: Path = () if not dots else path[: len(path) - len(dots)]
        if len(dots) > len(path):
            self.fail(path, f"${{{ref}}} goes above the root")
        target = (*base, *keys)
        node: Any = self.root
        for i, key in enumerate(target):
            node = self._child(node, key, target[: i + 1], ref, path)
        if isinstance(node, str) and "${" in node:
            node = self.value(node, target, depth + 1)
        return self.walk(node, target) if isinstance(node, (dict, list)) else node

    def _child(self, node: Any, key: str, at: Path, ref: str, path: Path) -> Any:
        if isinstance(node, str) and "${" in node:
            node = self.value(node, at[:-1], 1)
        if isinstance(node, dict) and key in node:
            return node[key]
        if isinstance(node, list) and key.isdigit() and int(key) < len(node):
            return node[int(key)]
        self.fail(path, f"${{{ref}}} refers to {'.'.join(at)}, which does not exist")
        return None

    def fail(self, path: Path, message: str) -> None:
        raise ConfigError(message, key=".".join(path) or "<root>", file=self.source)
