"""A tiny evaluator for the one Python expression tag Detectron2's YAML model zoo uses.

``Base-RetinaNet.yaml`` sets its anchor sizes with
``!!python/object/apply:eval ["[[x, x * 2**(1.0/3), x * 2**(2.0/3) ] for x in [32, 64, 128, 256,
512 ]]"]``. Detectron2 evaluates that string with Python's ``eval``; we never do. The string is
parsed with :mod:`ast` and only this subset is interpreted:

- int and float literals, unary ``-`` and ``+``, binary ``+ - * / **``;
- list and tuple displays;
- list comprehensions with one ``for`` over a literal list/tuple or ``range(...)`` of literal
  integers, with no ``if`` clause, binding one name (or a tuple of names);
- names bound by an enclosing comprehension, nothing else.

Everything else (calls other than ``range``, attributes, subscripts, other names, strings, ``if``)
raises :class:`ExprError` naming the construct. Sizes are bounded: the text's length, the
exponent of ``**``, the magnitude of every number, the length of every list / range and the total
number of values built.
"""

from __future__ import annotations

import ast
import math
from typing import Any

MAX_CHARS = 1000
MAX_ITEMS = 10_000  # values built in all (list items, comprehension iterations)
MAX_EXPONENT = 64
MAX_MAGNITUDE = 1e18
MAX_DEPTH = 32

Number = int | float


class ExprError(ValueError):
    """An expression outside the accepted subset (the caller adds the file and key)."""


def evaluate(text: str) -> Any:
    """The value of ``text`` (see the module docstring); raises ExprError otherwise."""
    if not isinstance(text, str):
        raise ExprError(f"expected the expression as a string, got {type(text).__name__}")
    if len(text) > MAX_CHARS:
        raise ExprError(f"expression is longer than {MAX_CHARS} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise ExprError(f"not a valid expression: {exc.__class__.__name__}") from None
    return _Evaluator().value(tree.body, {}, 0)


class _Evaluator:
    def __init__(self) -> None:
        self.items = 0

    def _count(self, n: int) -> None:
        self.items += n
        if self.items > MAX_ITEMS:
            raise ExprError(f"expression builds more than {MAX_ITEMS} values")

    def value(self, node: ast.AST, scope: dict[str, Any], depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise ExprError(f"expression is nested deeper than {MAX_DEPTH} levels")
        depth += 1
        if isinstance(node, ast.Constant):
            return _number(node.value)
        if isinstance(node, ast.Name):
            if node.id not in scope:
                raise ExprError(f"name {node.id!r} is not allowed (only names bound by a "
                                "comprehension)")
            return scope[node.id]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            operand = _need_number(self.value(node.operand, scope, depth))
            return -operand if isinstance(node.op, ast.USub) else operand
        if isinstance(node, ast.BinOp):
            return _binop(node.op, _need_number(self.value(node.left, scope, depth)),
                          _need_number(self.value(node.right, scope, depth)))
        if isinstance(node, (ast.List, ast.Tuple)):
            self._count(len(node.elts))
            return [self.value(e, scope, depth) for e in node.elts]
        if isinstance(node, ast.ListComp):
            return self._comprehension(node, scope, depth)
        raise ExprError(f"{type(node).__name__} is not allowed (only numbers, + - * / **, "
                        "lists and list comprehensions)")

    def _comprehension(self, node: ast.ListComp, scope: dict[str, Any], depth: int) -> list:
        if len(node.generators) != 1:
            raise ExprError("a comprehension may have one 'for' only")
        gen = node.generators[0]
        if gen.ifs or gen.is_async:
            raise ExprError("a comprehension may not have 'if' clauses or be async")
        names = _target_names(gen.target)
        out = []
        for item in self._iterable(gen.iter, scope, depth):
            inner = dict(scope)
            inner.update(_bind(names, item))
            self._count(1)
            out.append(self.value(node.elt, inner, depth))
        return out

    def _iterable(self, node: ast.AST, scope: dict[str, Any], depth: int) -> list:
        if isinstance(node, ast.Call):
            return self._range(node, scope, depth)
        if not isinstance(node, (ast.List, ast.Tuple)):
            raise ExprError("a comprehension may only iterate over a literal list or range()")
        return self.value(node, scope, depth)

    def _range(self, node: ast.Call, scope: dict[str, Any], depth: int) -> list:
        if not (isinstance(node.func, ast.Name) and node.func.id == "range") or node.keywords \
                or not 1 <= len(node.args) <= 3:
            raise ExprError("the only call allowed is range() with 1 to 3 integer arguments")
        args = [self.value(a, scope, depth) for a in node.args]
        if not all(isinstance(a, int) and not isinstance(a, bool) for a in args):
            raise ExprError("range() takes integers only")
        if len(args) == 3 and args[2] == 0:
            raise ExprError("range() step must not be zero")
        span = range(*args)
        if len(span) > MAX_ITEMS:
            raise ExprError(f"range() of {len(span)} items is more than {MAX_ITEMS}")
        return list(span)


def _target_names(target: ast.AST) -> list[str] | str:
    if isinstance(target, ast.Name):
        return target.id
    if isinstance(target, ast.Tuple) and all(isinstance(e, ast.Name) for e in target.elts):
        return [e.id for e in target.elts]  # type: ignore[attr-defined]
    raise ExprError("a comprehension may bind a name or a tuple of names only")


def _bind(names: list[str] | str, item: Any) -> dict[str, Any]:
    if isinstance(names, str):
        return {names: item}
    if not isinstance(item, list) or len(item) != len(names):
        raise ExprError(f"cannot unpack {item!r} into {len(names)} names")
    return dict(zip(names, item, strict=True))


def _number(value: Any) -> Number:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ExprError(f"constant {value!r} is not allowed (numbers only)")
    return _bounded(value)


def _need_number(value: Any) -> Number:
    if isinstance(value, list):
        raise ExprError("arithmetic on lists is not allowed")
    return value


def _bounded(value: Number) -> Number:
    if isinstance(value, float) and not math.isfinite(value):
        raise ExprError("the expression gives a number that is not finite")
    if abs(value) > MAX_MAGNITUDE:
        raise ExprError(f"number larger than {MAX_MAGNITUDE:g} in magnitude")
    return value


def _binop(op: ast.operator, left: Number, right: Number) -> Number:
    if isinstance(op, ast.Add):
        return _bounded(left + right)
    if isinstance(op, ast.Sub):
        return _bounded(left - right)
    if isinstance(op, ast.Mult):
        return _bounded(left * right)
    if isinstance(op, ast.Div):
        if right == 0:
            raise ExprError("division by zero")
        return _bounded(left / right)
    if isinstance(op, ast.Pow):
        if abs(right) > MAX_EXPONENT:
            raise ExprError(f"exponent {right!r} is larger than {MAX_EXPONENT}")
        if left == 0 and right < 0:
            raise ExprError("zero to a negative power")
        if left < 0 and isinstance(right, float) and not right.is_integer():
            raise ExprError("negative number to a fractional power")
        try:
            return _bounded(left ** right)
        except OverflowError:
            raise ExprError("the power overflows") from None
    raise ExprError(f"operator {type(op).__name__} is not allowed (only + - * / **)")
