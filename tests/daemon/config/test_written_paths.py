"""Where state and cache paths go (systemd's $STATE_DIRECTORY / $CACHE_DIRECTORY, else next to
the config), and that check-config and run refuse a path the daemon could not write, by key."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.config import ConfigError, parse_config
from daemon.config.writable import (
    WrittenPath,
    check_writable,
    create_folders,
    path_problem,
    written_paths,
)
from tests.daemon.daemon_helpers import require_program, subprocess_env

NOBODY = 65534
CONFIG = """
model: {path: models/m.onnx, optimized_cache: var/ort-cache}
cameras:
  - name: front
    source: {type: opencv, url: rtsp://camera.local/stream}
outputs:
  event_log: {path: var/events.jsonl}
  mqtt: {enabled: true, outbox: {path: var/mqtt-outbox.jsonl}}
  snapshots: {enabled: true, dir: var/snapshots}
"""
KEYS = ["model.optimized_cache", "outputs.event_log.path", "outputs.snapshots.dir",
        "outputs.journal.path"]  # the journal (on by default) replaces MQTT's outbox


@pytest.fixture()
def config_dir() -> Iterator[Path]:
    """A root-owned folder others may read but not write (like /etc/d2stream), outside the
    private pytest temporary tree so that another user can reach it."""
    folder = Path(tempfile.mkdtemp(prefix="d2s-etc-"))
    (folder / "models").mkdir()
    (folder / "models" / "m.onnx").write_bytes(b"onnx")
    (folder / "config.yaml").write_text(CONFIG, encoding="utf-8")
    for path in (folder, folder / "models"):
        path.chmod(0o755)
    (folder / "config.yaml").chmod(0o644)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_state_and_cache_paths_follow_systemds_directories(tmp_path: Path) -> None:
    env = {"STATE_DIRECTORY": "/var/lib/d2stream", "CACHE_DIRECTORY": "/var/cache/d2stream:/x"}
    cfg = parse_config(CONFIG, base_dir=tmp_path, env=env, check_files=False)
    assert cfg.model.path == tmp_path / "models" / "m.onnx"  # inputs: next to the config
    assert cfg.model.optimized_cache == Path("/var/cache/d2stream/var/ort-cache")
    assert cfg.outputs.event_log.path == Path("/var/lib/d2stream/var/events.jsonl")
    assert cfg.outputs.mqtt.outbox.path == Path("/var/lib/d2stream/var/mqtt-outbox.jsonl")
    assert cfg.outputs.snapshots.dir == Path("/var/lib/d2stream/var/snapshots")
    plain = parse_config(CONFIG, base_dir=tmp_path, env={}, check_files=False)
    assert plain.outputs.event_log.path == tmp_path / "var" / "events.jsonl"  # as before
    assert plain.model.optimized_cache == tmp_path / "var" / "ort-cache"
    absolute = CONFIG.replace("var/events.jsonl", "/srv/log/events.jsonl")
    assert parse_config(absolute, base_dir=tmp_path, env=env, check_files=False) \
        .outputs.event_log.path == Path("/srv/log/events.jsonl")
    assert [p.key for p in written_paths(cfg)] == KEYS


def test_disabled_outputs_are_not_written(tmp_path: Path) -> None:
    text = CONFIG.replace("mqtt: {enabled: true,", "mqtt: {enabled: false,").replace(
        "snapshots: {enabled: true", "snapshots: {enabled: false")
    cfg = parse_config(text, base_dir=tmp_path, env={}, check_files=False)
    assert [p.key for p in written_paths(cfg)] == [KEYS[0], KEYS[1], KEYS[3]]
    no_journal = parse_config(CONFIG + "  journal: {enabled: false}\n", base_dir=tmp_path,
                              env={}, check_files=False)
    assert "outputs.mqtt.outbox.path" in [p.key for p in written_paths(no_journal)]


def test_run_creates_the_folders_it_needs(tmp_path: Path) -> None:
    cfg = parse_config(CONFIG, base_dir=tmp_path, env={"STATE_DIRECTORY": str(tmp_path / "s")},
                       check_files=False)
    create_folders(cfg)
    assert (tmp_path / "s" / "var" / "snapshots").is_dir()
    assert (tmp_path / "var" / "ort-cache").is_dir()
    (tmp_path / "s" / "var" / "events.jsonl").mkdir()  # a folder where the log file goes
    with pytest.raises(ConfigError, match=r"outputs\.event_log\.path: .*events\.jsonl is a "
                                          r"folder"):
        check_writable(cfg)


def as_nobody(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    setpriv = require_program("setpriv")
    return subprocess.run([setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                           sys.executable, "-m", "daemon.cli.main", *args], cwd="/",
                          env=subprocess_env(env), capture_output=True, text=True, timeout=120)


def test_check_config_names_every_key_it_could_not_write(config_dir: Path) -> None:
    proc = as_nobody("check-config", str(config_dir / "config.yaml"))
    assert proc.returncode == 78, proc.stdout + proc.stderr
    line = proc.stderr.strip()
    assert "\n" not in line and "Traceback" not in line
    for key in KEYS:
        assert f"{key}: cannot create {config_dir / 'var'}" in line, line
    assert f"{config_dir} is not writable by user nobody" in line


def test_check_config_as_the_service_runs_it(config_dir: Path, tmp_path: Path) -> None:
    state, cache = Path(tempfile.mkdtemp(prefix="d2s-state-")), Path(tempfile.mkdtemp())
    try:
        for folder in (state, cache):
            os.chown(folder, NOBODY, NOBODY)
        proc = as_nobody("check-config", str(config_dir / "config.yaml"),
                         "--state-dir", str(state), "--cache-dir", str(cache))
        assert proc.returncode == 0, proc.stderr
        assert f"writes outputs.journal.path: {state}/var/journal.db" in proc.stdout
        assert f"writes model.optimized_cache: {cache}/var/ort-cache" in proc.stdout
        # the same through the environment systemd sets
        env = {"STATE_DIRECTORY": str(state), "CACHE_DIRECTORY": str(cache)}
        assert as_nobody("check-config", str(config_dir / "config.yaml"), env=env) \
            .returncode == 0
    finally:
        shutil.rmtree(state, ignore_errors=True)
        shutil.rmtree(cache, ignore_errors=True)


def test_run_refuses_an_unwritable_path_before_starting(config_dir: Path) -> None:
    proc = as_nobody("run", "--config", str(config_dir / "config.yaml"))
    assert proc.returncode == 78, proc.stderr
    assert "outputs.event_log.path: cannot create" in proc.stderr
    assert "Traceback" not in proc.stderr and "Errno 13" not in proc.stderr


def test_unusable_paths_are_named_not_raised() -> None:
    for bad, why in (("/tmp/a\x00b.jsonl", "a NUL byte"),
                     ("/tmp/" + "x" * 300 + "/e.jsonl", "File name too long")):
        problem = path_problem(WrittenPath("outputs.event_log.path", Path(bad), False))
        assert problem is not None and problem.startswith("unusable path") and why in problem


def test_the_zoo_cache_follows_systemds_cache_directory(monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: Path) -> None:
    from d2common.zoo_names import cache_dir

    monkeypatch.delenv("D2STREAM_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "d2stream"
    monkeypatch.setenv("CACHE_DIRECTORY", "/var/cache/d2stream")
    assert cache_dir() == Path("/var/cache/d2stream")
    monkeypatch.setenv("D2STREAM_CACHE", str(tmp_path / "own"))
    assert cache_dir() == tmp_path / "own"
    text = CONFIG.replace("path: models/m.onnx", "path: 'zoo:COCO-Detection/x'")
    cfg = parse_config(text, base_dir=tmp_path, env={}, check_files=False)
    assert ("model.path", tmp_path / "own") in [(p.key, p.path) for p in written_paths(cfg)]
