"""The import graph of the three packages, read with ``ast`` (nothing is imported): no cycle,
the daemon's declared layering, and which side may import which (docs/architecture.md).

Every ``import`` / ``from ... import`` of ``d2common``, ``daemon`` and ``export_tools`` counts,
wherever it is written: at module level, under ``if TYPE_CHECKING:`` or inside a function
(a lazy import); only the side rules tell lazy imports apart.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("d2common", "daemon", "export_tools")

#: the daemon's units (``daemon.<unit>``) bottom to top: a module imports daemon modules of its
#: own unit or of a lower layer only, never of its layer's other units or of a higher layer.
#: ``daemon`` itself (its ``__init__``, the version) is below them all.
DAEMON_LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"inference", "perf", "demo"}),      # model runtime, measuring, synthetic scenes
    frozenset({"structures"}),                     # shared data types (Frame, FrameResult, ...)
    frozenset({"config", "zoo_cache"}),            # the YAML schema, model references
    frozenset({"sources", "tracking", "zones", "motion", "visualization", "evaluation"}),
    frozenset({"events"}),                         # the event stage
    frozenset({"sinks", "service"}),               # outputs, systemd/health
    frozenset({"pipeline"}),                       # runner, producer, queue, worker
    frozenset({"cli"}),                            # the d2stream command
)
#: daemon modules that may import export_tools, lazily only (export commands, zoo exports)
EXPORT_CALLERS = ("daemon.cli.", "daemon.zoo_cache")
#: what the device side (d2common, daemon) never imports at module level
DESKTOP_ONLY = ("torch", "detectron2", "onnx")


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    lazy: bool  # inside a function
    line: int

    def __str__(self) -> str:
        return f"{self.source} -> {self.target}{' (lazy)' if self.lazy else ''} line {self.line}"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@lru_cache(maxsize=1)
def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[_module_name(path)] = path
    return found


def _imports(tree: ast.AST, lazy: bool = False) -> Iterator[tuple[ast.Import | ast.ImportFrom,
                                                                  bool]]:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node, lazy
        inner = lazy or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        yield from _imports(node, inner)


def _targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool,
             known: dict[str, Path]) -> Iterator[str]:
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    base = node.module or ""
    if node.level:
        anchor = module.split(".") if is_package else module.split(".")[:-1]
        anchor = anchor[: len(anchor) - (node.level - 1)]
        base = ".".join([*anchor, base] if base else anchor)
    for alias in node.names:  # ``from pkg import submodule`` imports the submodule
        full = f"{base}.{alias.name}"
        yield full if full in known else base


@lru_cache(maxsize=1)
def edges() -> tuple[Edge, ...]:
    known = modules()
    found = []
    for module, path in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node, lazy in _imports(tree):
            for target in _targets(node, module, path.name == "__init__.py", known):
                if target.split(".")[0] in PACKAGES and target != module:
                    found.append(Edge(module, target, lazy, node.lineno))
    return tuple(found)


def external_edges(packages: tuple[str, ...]) -> Iterator[Edge]:
    """Module-level imports of anything outside the three packages, for ``packages``' modules."""
    for module, path in modules().items():
        if module.split(".")[0] not in packages:
            continue
        for node, lazy in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            if lazy or (isinstance(node, ast.ImportFrom) and node.level):
                continue
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""])
            for name in names:
                yield Edge(module, name, False, node.lineno)


def unit(module: str) -> str:
    """``d2common``; ``daemon.<sub>`` / ``export_tools.<sub>``; ``daemon`` for its __init__."""
    parts = module.split(".")
    return parts[0] if parts[0] == "d2common" else ".".join(parts[:2])


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _graph(pairs: Iterator[tuple[str, str]]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for a, b in pairs:
        if a != b:
            graph.setdefault(a, set()).add(b)
    return graph


def daemon_layer(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "daemon":
        return None
    if len(parts) == 1:
        return -1
    for level, units in enumerate(DAEMON_LAYERS):
        if parts[1] in units:
            return level
    raise AssertionError(f"{module}: daemon unit {parts[1]!r} is in no layer of DAEMON_LAYERS "
                         f"(tests/test_import_graph.py, docs/architecture.md)")


def test_the_graph_is_read() -> None:
    found = edges()
    assert len(modules()) > 150 and len(found) > 300
    assert Edge("daemon.zoo_cache", "export_tools.zoo", True, 0).target in {
        e.target for e in found if e.source == "daemon.zoo_cache" and e.lazy}


def _none(found: list[str] | list[list[str]], what: str) -> None:
    assert not found, f"{what}:\n" + "\n".join(str(f) for f in found)


def test_no_module_cycle() -> None:
    _none(cycles(_graph((e.source, e.target) for e in edges())), "import cycles")


def test_no_cycle_between_packages() -> None:
    _none(cycles(_graph((unit(e.source), unit(e.target)) for e in edges())), "package cycles")


def test_d2common_is_the_foundation() -> None:
    _none([str(e) for e in edges()
           if e.source.startswith("d2common") and not e.target.startswith("d2common")],
          "d2common imports")


def test_export_tools_never_imports_daemon() -> None:
    _none([str(e) for e in edges()
           if e.source.startswith("export_tools") and e.target.startswith("daemon")],
          "export_tools imports of daemon")


def test_daemon_imports_export_tools_only_lazily_for_exports() -> None:
    bad = [str(e) for e in edges() if e.source.startswith("daemon")
           and e.target.startswith("export_tools")
           and not (e.lazy and e.source.startswith(EXPORT_CALLERS))]
    _none(bad, "daemon imports of export_tools outside export commands or at module level")


def test_daemon_units_import_only_downwards() -> None:
    bad = []
    for e in edges():
        source, target = daemon_layer(e.source), daemon_layer(e.target)
        if source is None or target is None or unit(e.source) == unit(e.target):
            continue
        if target >= source:
            bad.append(f"{e} (layer {source} imports layer {target})")
    _none(bad, "imports that go up or sideways (DAEMON_LAYERS)")


def test_every_daemon_unit_has_a_layer() -> None:
    for module in modules():
        daemon_layer(module)


@pytest.mark.parametrize("package", ["d2common", "daemon"])
def test_device_side_needs_no_desktop_tools(package: str) -> None:
    bad = [str(e) for e in external_edges((package,))
           if e.target.split(".")[0] in DESKTOP_ONLY]
    _none(bad, "module-level imports of desktop-only packages")


def test_every_folder_of_modules_is_a_package() -> None:
    """``packages.find`` (pyproject.toml) leaves folders without ``__init__.py`` out of a wheel."""
    missing = sorted(str(path.parent.relative_to(ROOT)) for path in modules().values()
                     if not (path.parent / "__init__.py").is_file())
    _none(sorted(set(missing)), "folders without __init__.py")


def test_the_checks_catch_what_they_forbid() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert daemon_layer("daemon.structures.frame") < daemon_layer("daemon.sources.base")
    assert unit("daemon.pipeline.runner") == "daemon.pipeline" and unit("d2common.x") == "d2common"
