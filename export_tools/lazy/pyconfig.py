"""LazyConfig ``.py`` files read without executing them: ``ast`` and a small interpreter.

Only the subset Detectron2's configs use is interpreted: imports (names become inert
:class:`NameRef` markers; relative imports and ``model_zoo.get_config(...)`` read other config
files the same way), assignments to names and attribute paths (chained too), literals, lists,
tuples, dicts, ``L(Class)(...)``, ``ShapeSpec(...)``, ``functools.partial(...)``, ``dict(...)``,
lambdas (a :class:`~export_tools.lazy.markers.LambdaRef`, with the norm its body makes when it is
one: :mod:`export_tools.lazy.lambdas`), attribute access into config values, arithmetic on
numbers (``x *= 2`` too), tuple unpacking (``a, b = 1, 2``), ``list(range(...))``, ``for`` loops
over a list (no ``else``), list comprehensions with one ``for`` and no ``if``, and the dict methods
``.pop(key)`` / ``.update(...)`` (also as a statement: Detectron2's cascade configs pop keys in a
comprehension). Anything else is refused with its file and line. Nothing is imported or run.
"""

from __future__ import annotations

import ast
import copy
import operator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from export_tools.errors import ConfigError
from export_tools.lazy.lambdas import read_lambda
from export_tools.lazy.markers import NameRef, PartialValue, ShapeSpecValue

MAX_FILE_BYTES = 1024 * 1024
MAX_DEPTH = 16
MAX_ITEMS = 4096  # longest list a range or a comprehension may make
MAX_ITERATIONS = 65536  # loop and comprehension steps of one file, nested ones included
DICT_METHODS = ("pop", "update")
LAZY_CALLS = {"detectron2.config.LazyCall", "detectron2.config.lazy.LazyCall"}
MODEL_ZOO = {"detectron2.model_zoo"}
SHAPE_SPECS = {"detectron2.layers.ShapeSpec", "detectron2.layers.shape_spec.ShapeSpec"}
PARTIALS = {"functools.partial"}
_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Pow: operator.pow,
           ast.Mod: operator.mod}


@dataclass(frozen=True)
class _Pending:
    """``L(Class)``: waits for its keyword arguments."""

    target: str


class _Reader:
    def __init__(self, path: Path, depth: int, stack: tuple[Path, ...]) -> None:
        self.path, self.depth, self.stack = path, depth, stack
        self.env: dict[str, Any] = {}
        self.iterations = 0

    def fail(self, node: ast.AST | None, message: str) -> ConfigError:
        line = f"line {node.lineno}: " if node is not None and hasattr(node, "lineno") else ""
        return ConfigError(f"{line}{message} (LazyConfig .py files are read, never run; only "
                           "the subset Detectron2's configs use is accepted)", file=str(self.path))

    # -- statements ---------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        try:
            if self.path.stat().st_size > MAX_FILE_BYTES:
                raise self.fail(None, f"file is larger than {MAX_FILE_BYTES} bytes")
            tree = ast.parse(self.path.read_text(encoding="utf-8"), filename=str(self.path))
        except (OSError, UnicodeDecodeError, SyntaxError) as exc:
            raise self.fail(None, f"cannot read config: {exc}") from None
        for stmt in tree.body:
            self.statement(stmt)
        return self.env

    def statement(self, stmt: ast.stmt) -> None:
        if isinstance(stmt, ast.Import):
            for alias in stmt.names:
                name = alias.asname or alias.name.split(".")[0]
                self.env[name] = NameRef(alias.name if alias.asname else name)
        elif isinstance(stmt, ast.ImportFrom):
            self.import_from(stmt)
        elif isinstance(stmt, ast.Assign):
            value = self.expr(stmt.value)
            for target in stmt.targets:
                self.assign(target, value)
        elif isinstance(stmt, ast.AugAssign) and isinstance(stmt.target, (ast.Name, ast.Attribute)):
            current = self.expr(stmt.target)  # the target read as a value
            self.assign(stmt.target, self.binop(stmt, stmt.op, current, self.expr(stmt.value)))
        elif isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
            return  # a docstring or a bare literal
        elif isinstance(stmt, ast.Expr) and self.is_method_statement(stmt.value):
            self.expr(stmt.value)  # d.pop(k), d.update(...), or a comprehension of them
        elif isinstance(stmt, ast.For) and not stmt.orelse:
            for item in self.items(stmt, stmt.iter, "a for loop"):
                self.assign(stmt.target, item)
                for inner in stmt.body:
                    self.statement(inner)
        else:
            raise self.fail(stmt, f"{type(stmt).__name__} statements are not accepted")

    def import_from(self, stmt: ast.ImportFrom) -> None:
        if stmt.level:
            base = self.path.parent
            for _ in range(stmt.level - 1):
                base = base.parent
            parts = (stmt.module or "").split(".") if stmt.module else []
            env = self.load(base.joinpath(*parts).with_suffix(".py"), stmt)
            for alias in stmt.names:
                if alias.name not in env:
                    raise self.fail(stmt, f"{alias.name!r} is not defined in {stmt.module}")
                self.env[alias.asname or alias.name] = env[alias.name]
            return
        for alias in stmt.names:
            if alias.name == "*":
                raise self.fail(stmt, "'import *' is not accepted")
            self.env[alias.asname or alias.name] = NameRef(f"{stmt.module}.{alias.name}")

    def load(self, path: Path, node: ast.AST) -> dict[str, Any]:
        path = path.resolve()
        if path in self.stack:
            raise self.fail(node, f"{path} imports itself (a cycle)")
        if self.depth >= MAX_DEPTH or not path.is_file():
            raise self.fail(node, f"config file {path} not found")
        return _Reader(path, self.depth + 1, (*self.stack, path)).run()

    def is_method_statement(self, node: ast.expr) -> bool:
        if isinstance(node, ast.ListComp):
            node = node.elt
        return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
            and node.func.attr in DICT_METHODS

    def assign(self, target: ast.expr, value: Any) -> None:
        if isinstance(target, (ast.Tuple, ast.List)):
            if not isinstance(value, list) or len(value) != len(target.elts):
                raise self.fail(target, f"cannot unpack {value!r} into {len(target.elts)} names")
            for elt, item in zip(target.elts, value):
                self.assign(elt, item)
            return
        if isinstance(target, ast.Name):
            self.env[target.id] = value
            return
        if isinstance(target, ast.Attribute):
            owner = self.expr(target.value)
            if not isinstance(owner, dict):
                raise self.fail(target, f"cannot set .{target.attr} on a {type(owner).__name__}")
            owner[target.attr] = value
            return
        raise self.fail(target, f"assignment to a {type(target).__name__} is not accepted")

    # -- expressions --------------------------------------------------------------------------
    def expr(self, node: ast.expr) -> Any:
        method = getattr(self, f"e_{type(node).__name__}", None)
        if method is None:
            raise self.fail(node, f"{type(node).__name__} expressions are not accepted")
        return method(node)

    def e_Constant(self, node: ast.Constant) -> Any:
        return node.value

    def e_List(self, node: ast.List) -> Any:
        return [self.expr(e) for e in node.elts]

    e_Tuple = e_List

    def e_Dict(self, node: ast.Dict) -> Any:
        out = {}
        for k, v in zip(node.keys, node.values):
            key = self.expr(k) if k is not None else None
            if not isinstance(key, str):
                raise self.fail(node, "dict keys must be strings")
            out[key] = self.expr(v)
        return out

    def e_Name(self, node: ast.Name) -> Any:
        if node.id in ("True", "False", "None"):
            return {"True": True, "False": False, "None": None}[node.id]
        if node.id in ("dict", "list", "range") and node.id not in self.env:
            return NameRef(f"builtins.{node.id}")
        if node.id not in self.env:
            raise self.fail(node, f"name {node.id!r} is not defined")
        return self.env[node.id]

    def e_Attribute(self, node: ast.Attribute) -> Any:
        owner = self.expr(node.value)
        if isinstance(owner, dict):
            if node.attr not in owner:
                raise self.fail(node, f"no key {node.attr!r} here")
            return owner[node.attr]
        if isinstance(owner, NameRef):
            return NameRef(f"{owner.name}.{node.attr}")
        raise self.fail(node, f"attribute .{node.attr} of a {type(owner).__name__}")

    def e_Subscript(self, node: ast.Subscript) -> Any:
        owner, key = self.expr(node.value), self.expr(node.slice)
        if isinstance(owner, list) and isinstance(key, int) and -len(owner) <= key < len(owner):
            return owner[key]
        if isinstance(owner, dict) and isinstance(key, str) and key in owner:
            return owner[key]
        raise self.fail(node, f"cannot index a {type(owner).__name__} with {key!r}")

    def e_Lambda(self, node: ast.Lambda) -> Any:
        return read_lambda(node, f"{self.path.name}.<lambda>", self.expr)

    def e_UnaryOp(self, node: ast.UnaryOp) -> Any:
        value = self.expr(node.operand)
        if isinstance(node.op, (ast.USub, ast.UAdd)) and _number(value):
            return -value if isinstance(node.op, ast.USub) else value
        raise self.fail(node, "only + and - of a number are accepted")

    def e_ListComp(self, node: ast.ListComp) -> Any:
        if len(node.generators) != 1 or node.generators[0].ifs or node.generators[0].is_async:
            raise self.fail(node, "comprehensions with one 'for' and no 'if' only")
        gen = node.generators[0]
        items = self.items(node, gen.iter, "a comprehension")
        saved = dict(self.env)
        try:
            out = []
            for item in items:
                self.assign(gen.target, item)
                out.append(self.expr(node.elt))
        finally:
            self.env = saved  # the loop names do not leak, as in Python 3
        return out

    def items(self, node: ast.AST, iterable: ast.expr, what: str) -> list[Any]:
        items = self.expr(iterable)
        if not isinstance(items, list) or len(items) > MAX_ITEMS:
            raise self.fail(node, f"{what} iterates over a list (at most {MAX_ITEMS} items)")
        self.iterations += len(items)
        if self.iterations > MAX_ITERATIONS:
            raise self.fail(node, f"more than {MAX_ITERATIONS} loop steps in one file")
        return items

    def e_BinOp(self, node: ast.BinOp) -> Any:
        return self.binop(node, node.op, self.expr(node.left), self.expr(node.right))

    def binop(self, node: ast.AST, opnode: ast.operator, left: Any, right: Any) -> Any:
        op = _BINOPS.get(type(opnode))
        if op is operator.add and isinstance(left, list) and isinstance(right, list):
            return left + right
        if op is operator.mul and isinstance(left, list) and isinstance(right, int) \
                and not isinstance(right, bool) and 0 <= right <= 1024:
            return [copy.deepcopy(v) for _ in range(right) for v in left]
        if op is None or not (_number(left) and _number(right)):
            raise self.fail(node, "arithmetic is accepted on numbers only (+ - * / // ** %)")
        if op is operator.pow and abs(right) > 64:
            raise self.fail(node, "exponent too large")
        try:
            return op(left, right)
        except ArithmeticError as exc:
            raise self.fail(node, f"arithmetic error: {exc}") from None

    def e_Call(self, node: ast.Call) -> Any:
        if isinstance(node.func, ast.Attribute) and node.func.attr in DICT_METHODS:
            owner = self.expr(node.func.value)
            if isinstance(owner, dict) and node.func.attr not in owner:
                return self.dict_method(node, owner, node.func.attr)
        func = self.expr(node.func)
        args = [self.expr(a) for a in node.args]
        kwargs = {}
        for kw in node.keywords:
            if kw.arg is None:
                raise self.fail(node, "**kwargs in calls are not accepted")
            kwargs[kw.arg] = self.expr(kw.value)
        if isinstance(func, _Pending):
            if args:
                raise self.fail(node, f"L({func.target})(...) takes keyword arguments only")
            return {"_target_": func.target, **kwargs}
        name = func.name if isinstance(func, NameRef) else None
        return self.call(node, name, func, args, kwargs)

    def dict_method(self, node: ast.Call, owner: dict[str, Any], method: str) -> Any:
        args = [self.expr(a) for a in node.args]
        if any(kw.arg is None for kw in node.keywords):
            raise self.fail(node, "**kwargs in calls are not accepted")
        kwargs = {kw.arg: self.expr(kw.value) for kw in node.keywords if kw.arg}
        if method == "pop" and len(args) in (1, 2) and not kwargs and isinstance(args[0], str):
            if args[0] not in owner and len(args) == 1:
                raise self.fail(node, f".pop({args[0]!r}): no such key")
            return owner.pop(args[0], *args[1:])
        if method == "update" and (not args or (len(args) == 1 and isinstance(args[0], dict))):
            update = {**(args[0] if args else {}), **kwargs}
            if isinstance(update.get("_target_"), NameRef):  # a class: saved as its name
                update["_target_"] = update["_target_"].name
            owner.update(update)
            return None
        raise self.fail(node, f".{method}(...) with these arguments is not accepted")

    def call(self, node: ast.Call, name: str | None, func: Any, args: list, kwargs: dict) -> Any:
        if name in LAZY_CALLS and len(args) == 1 and not kwargs:
            target = args[0]
            if not isinstance(target, NameRef):
                raise self.fail(node, "L(...) takes a class or function name")
            return _Pending(target.name)
        if name in {f"{m}.get_config" for m in MODEL_ZOO} and len(args) == 1:
            return self.model_zoo(node, args[0])
        if name in SHAPE_SPECS and not args:
            return ShapeSpecValue(kwargs)
        if name in PARTIALS and args:
            return PartialValue(args[0], args[1:], kwargs)
        if name == "builtins.dict" and not args:
            return dict(kwargs)
        if name == "builtins.list" and len(args) == 1 and isinstance(args[0], list) \
                and not kwargs:
            return list(args[0])
        if name == "builtins.range" and 1 <= len(args) <= 3 and not kwargs \
                and all(isinstance(a, int) and not isinstance(a, bool) for a in args):
            if len(range(*args)) > MAX_ITEMS:
                raise self.fail(node, f"range of more than {MAX_ITEMS} items")
            return list(range(*args))
        if name == "omegaconf.OmegaConf.create" and len(args) <= 1 and not kwargs:
            if args and not isinstance(args[0], dict):
                raise self.fail(node, "OmegaConf.create takes a dict here")
            return copy.deepcopy(args[0]) if args else {}
        raise self.fail(node, f"call of {name or type(func).__name__} is not accepted")

    def model_zoo(self, node: ast.Call, rel: Any) -> dict[str, Any]:
        if not isinstance(rel, str) or rel.startswith("/") or ".." in Path(rel).parts:
            raise self.fail(node, f"model_zoo.get_config({rel!r}): a relative config path")
        for folder in self.path.parents:
            for root in (folder, folder / "configs"):
                if root.name == "configs" and (root / rel).is_file():
                    return self.load(root / rel, node)
        raise self.fail(node, f"model_zoo.get_config({rel!r}): not found under a configs/ "
                        f"folder above {self.path} (give a Detectron2 checkout's config)")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def read_lazy_py(path: str | Path) -> dict[str, Any]:
    """The config tree a LazyConfig ``.py`` file describes (as ``LazyConfig.load`` builds it:
    its top-level dict values), with markers for names and interpolations still unresolved."""
    path = Path(path).resolve()
    env = _Reader(path, 0, (path,)).run()
    return {k: v for k, v in env.items() if isinstance(v, dict) and not k.startswith("_")}
