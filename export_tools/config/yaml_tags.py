"""The one Python tag Detectron2's YAML model zoo uses, read without evaluating anything.

``yaml.SafeLoader`` plus a constructor for ``!!python/object/apply:eval [TEXT]`` only: it keeps
the expression text as an :class:`EvalTag` marker. :func:`resolve_eval_tags` then replaces each
marker by the value :func:`export_tools.config.expr.evaluate` computes (a whitelisted ``ast``
subset: numbers, arithmetic, lists, simple comprehensions), or raises ConfigError naming the
file, the key path and the line. Every other Python tag stays refused by the safe loader.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from export_tools.config.expr import ExprError, evaluate
from export_tools.errors import ConfigError

MAX_WALK_DEPTH = 64
EVAL_TAG = "tag:yaml.org,2002:python/object/apply:eval"


@dataclass(frozen=True)
class EvalTag:
    """An ``!!python/object/apply:eval`` value: its expression (or why it is malformed)."""

    text: str | None
    line: int
    problem: str = ""


class ZooLoader(yaml.SafeLoader):
    """SafeLoader that also reads ``!!python/object/apply:eval [TEXT]`` as an inert marker."""


def _construct_eval(loader: ZooLoader, node: yaml.Node) -> EvalTag:
    line = node.start_mark.line + 1
    if not isinstance(node, yaml.SequenceNode) or len(node.value) != 1 \
            or not isinstance(node.value[0], yaml.ScalarNode) \
            or node.value[0].tag != "tag:yaml.org,2002:str":
        return EvalTag(None, line, "expects one argument, the expression as a string")
    return EvalTag(str(node.value[0].value), line)


ZooLoader.add_constructor(EVAL_TAG, _construct_eval)


def load_yaml(text: str) -> Any:
    """``yaml.safe_load`` plus :class:`EvalTag` markers (resolve them with resolve_eval_tags)."""
    return yaml.load(text, Loader=ZooLoader)  # noqa: S506 - SafeLoader subclass, inert tag


def resolve_eval_tags(tree: Any, source: str) -> Any:
    """``tree`` with every :class:`EvalTag` replaced (in place) by its value; ConfigError
    otherwise. Shared or self-referencing nodes (YAML aliases) are visited once."""
    if isinstance(tree, EvalTag):
        return _evaluate(tree, source, "")
    _resolve_in(tree, source, "", set(), 0)
    return tree


def _resolve_in(node: Any, source: str, path: str, seen: set[int], depth: int) -> None:
    if id(node) in seen or depth > MAX_WALK_DEPTH:
        return  # an alias seen before, or nesting the config checks refuse anyway
    seen.add(id(node))
    items = node.items() if isinstance(node, dict) else \
        enumerate(node) if isinstance(node, list) else ()
    for key, value in list(items):
        where = f"{path}.{key}" if path else str(key)
        if isinstance(value, EvalTag):
            node[key] = _evaluate(value, source, where)
        elif isinstance(value, (dict, list)):
            _resolve_in(value, source, where, seen, depth + 1)


def _evaluate(tag: EvalTag, source: str, path: str) -> Any:
    where = f"!!python/object/apply:eval (line {tag.line})"
    if tag.text is None:
        raise ConfigError(f"{where} {tag.problem}", key=path or "<root>", file=source)
    try:
        return evaluate(tag.text)
    except ExprError as exc:
        raise ConfigError(f"{where} is refused: {exc}; only arithmetic on numbers, lists and "
                          "simple list comprehensions are computed (nothing is evaluated)",
                          key=path or "<root>", file=source) from None
