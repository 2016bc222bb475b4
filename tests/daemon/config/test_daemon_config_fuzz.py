"""Fuzzed daemon configs: whatever the YAML holds, loading gives a config or one ConfigError line.

Four generators (hypothesis): arbitrary text, arbitrary YAML mappings, the real key tree of the
schema with random values, and a valid config with random mutations. ``check-config`` is run on
fuzzed files in-process (exit status and output checked) and, for hostile documents (alias bombs,
deep nesting, binary, huge files), as a real subprocess.

``D2STREAM_FUZZ_EXAMPLES`` raises the number of examples per generator (default 300).
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path
from typing import Any, get_args, get_origin

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from daemon.cli.main import main as d2stream_main
from daemon.config import EXIT_CONFIG, ConfigError, DaemonConfig, parse_config
from daemon.config.loader import MAX_CONFIG_BYTES
from tests.daemon.daemon_helpers import run_cli

EXAMPLES = int(os.environ.get("D2STREAM_FUZZ_EXAMPLES", "300"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def schema_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every dotted key path of a pydantic model (union members and list items included)."""
    keys: list[str] = []
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        keys.append(path)
        for sub in _models_in(field.annotation):
            keys += schema_keys(sub, f"{path}.")
    return sorted(set(keys))


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if get_origin(annotation) is None:
        return []
    return [m for arg in get_args(annotation) for m in _models_in(arg)]


KEYS = schema_keys(DaemonConfig)
KEY_PARTS = sorted({part for key in KEYS for part in key.split(".")} | {"type", "opencv"})

TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=24)
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(-(10**30), 10**30),
    st.floats(allow_nan=True, allow_infinity=True), TEXT,
    st.sampled_from(["opencv", "folder", "picamera2", "0", "/dev/video0", "rtsp://h/x", "http://",
                     "${HOME}", "${NOPE}", "${X:-1}", "${", "0.0.0.0", "always", "debug", "-1",
                     "1e309", "[1, 2]", "~", "../../etc/passwd", "zoo:", "zoo:x/y", ""]),
)
VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.one_of(st.sampled_from(KEY_PARTS), TEXT),
                                               children, max_size=4)),
    max_leaves=16,
)
ANY_KEY = st.one_of(st.sampled_from(KEY_PARTS), TEXT, st.integers(), st.none(), st.booleans())


def _nest(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for dotted, value in pairs:
        node = tree
        *parents, leaf = dotted.split(".")
        for part in parents:
            child = node.get(part)
            if part == "cameras" and not isinstance(child, list):
                child = node[part] = [{}]
            if isinstance(child, list):
                child = child[0] if child and isinstance(child[0], dict) else {}
                node[part] = [child]
            elif not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[leaf] = value
    return tree


REAL_SHAPED = st.lists(st.tuples(st.sampled_from(KEYS), VALUES), max_size=10).map(_nest)

VALID: dict[str, Any] = {
    "model": {"path": "models/m.onnx", "min_score": 0.5},
    "cameras": [{"name": "front", "source": {"type": "opencv", "url": "clip.mp4"}},
                {"name": "shelf", "source": {"type": "folder", "path": "frames"}}],
    "outputs": {"http": {"enabled": True, "port": 8080}, "mqtt": {"enabled": True}},
}


def _paths(tree: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(tree, dict):
        for key, value in tree.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(tree, list):
        for i, value in enumerate(tree):
            out += _paths(value, (*prefix, i))
    return out


@st.composite
def mutated_valid(draw: st.DrawFn) -> dict[str, Any]:
    """The valid config with 1-4 random edits: a value replaced, a key deleted or added."""
    config = yaml.safe_load(yaml.safe_dump(VALID))
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(_paths(config)[1:]))
        *parents, last = path
        node = config
        for part in parents:
            node = node[part]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            node[last] = draw(VALUES)
        elif action == "delete":
            del node[last]
        elif isinstance(node[last], dict):
            node[last][draw(ANY_KEY)] = draw(VALUES)
        if not config:
            break
    return config


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fuzzbase")
    (folder / "models").mkdir()
    (folder / "models" / "m.onnx").write_bytes(b"onnx")
    (folder / "clip.mp4").write_bytes(b"video")
    (folder / "frames").mkdir()
    return folder


def assert_loads_or_one_line(text: str, base: Path) -> DaemonConfig | None:
    """``parse_config`` returns a config or raises a one-line ConfigError; nothing else."""
    for check_files in (True, False):
        try:
            config = parse_config(text, name="fuzz.yaml", base_dir=base,
                                  env={"HOME": "/home/x", "X": ""}, check_files=check_files)
        except ConfigError as exc:
            message = str(exc)
            assert message.startswith("fuzz.yaml: "), message
            assert message.isprintable() and len(message) < 4000, message
            assert exc.exit_code == EXIT_CONFIG
            continue
        assert config.enabled_cameras()
        return config
    return None


def _dump(data: Any) -> str:
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


@SETTINGS
@given(text=st.text(max_size=400))
def test_random_text(base: Path, text: str) -> None:
    assert_loads_or_one_line(text, base)


@SETTINGS
@given(data=st.dictionaries(ANY_KEY, VALUES, max_size=6))
def test_random_mappings(base: Path, data: dict) -> None:
    assert_loads_or_one_line(_dump(data), base)


@SETTINGS
@given(data=REAL_SHAPED)
def test_schema_shaped_random_values(base: Path, data: dict) -> None:
    assert_loads_or_one_line(_dump(data), base)


@SETTINGS
@given(data=mutated_valid())
def test_mutations_of_a_valid_config(base: Path, data: dict) -> None:
    assert_loads_or_one_line(_dump(data), base)


def test_the_unmutated_config_is_valid(base: Path) -> None:
    assert assert_loads_or_one_line(_dump(VALID), base) is not None


@settings(max_examples=max(40, EXAMPLES // 5), deadline=None, derandomize=True, database=None)
@given(data=st.one_of(REAL_SHAPED, mutated_valid()))
def test_check_config_command(base: Path, data: dict) -> None:
    """``d2stream check-config``: exit 0 with an OK line, or exit 78 with one error line."""
    path = base / "fuzz.yaml"
    path.write_text(_dump(data), encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = d2stream_main(["check-config", str(path)])
    if code == 0:
        assert out.getvalue().startswith(f"{path}: OK;") and not err.getvalue()
    else:
        assert code == EXIT_CONFIG
        lines = err.getvalue().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"{path}: "), err.getvalue()


def _laughs(levels: int = 9) -> str:
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels):
        refs = ", ".join([f"*a{i - 1}"] * 9)
        lines.append(f"a{i}: &a{i} [{refs}]")
    return "\n".join(lines) + f"\nmodel: {{path: x}}\ncameras: *a{levels - 1}\n"


HOSTILE = {
    "billion laughs (aliases)": (_laughs(), "more than 20000 values"),
    "self-referencing alias": ("model: &m {path: *m}\n", "refers to a value that contains it"),
    "deep flow nesting": ("a: " + "[" * 20000 + "]" * 20000 + "\n", "invalid YAML: nested"),
    "deep block nesting": ("".join("  " * i + f"k{i}:\n" for i in range(200)),
                           "nested deeper than 32 levels"),
    "huge integer": ("model: {path: x, num_threads: 1" + "0" * 6000 + "}\n", "invalid YAML"),
    "python object tag": ("!!python/object/apply:os.system ['touch pwned']\n",
                          "could not determine a constructor"),
    "binary": ("\x00\x01\x02", "invalid YAML"),
    "key with a line break": ('"bad\\nkey": 1\nmodel: {path: x}\n', "bad\\nkey: unknown key"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_documents_with_the_real_command(case: str, tmp_path: Path) -> None:
    text, expected = HOSTILE[case]
    path = tmp_path / "hostile.yaml"
    path.write_text(text, encoding="utf-8")
    proc = run_cli("check-config", path, cwd=tmp_path, timeout=60)
    assert proc.returncode == EXIT_CONFIG, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith(f"{path}: ") and expected in lines[0], lines[0]
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("case", ["too large", "a directory", "not UTF-8"])
def test_unreadable_files_with_the_real_command(case: str, tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    if case == "too large":
        path.write_text("# padding\n" * (MAX_CONFIG_BYTES // 10 + 1), encoding="utf-8")
    elif case == "a directory":
        path.mkdir()
    else:
        path.write_bytes(b"model: \xff\xfe\n")
    proc = run_cli("check-config", path, cwd=tmp_path, timeout=60)
    assert proc.returncode == EXIT_CONFIG, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{path}: "), proc.stderr
