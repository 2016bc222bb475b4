"""``model: {path: zoo:NAME}`` in a daemon config: exported on first start, cached after."""

from __future__ import annotations

import os
import shutil

from d2common.zoo_names import zoo_onnx_path
from daemon.config.loader import load_config
from tests.daemon.daemon_helpers import DaemonProcess, daemon_config, subprocess_env, write_yaml


def _config(tmp_path, mirror):
    images = tmp_path / "images"
    images.mkdir()
    for i in range(2):
        shutil.copyfile(mirror.fixture / f"image_{i}.png", images / f"image_{i}.png")
    cfg = daemon_config(tmp_path / "unused.mp4", tmp_path / "unused.mp4")
    cfg["model"]["path"] = f"zoo:{mirror.entry}"
    cfg["cameras"] = [{"name": "cam", "source": {"type": "folder", "path": str(images)}}]
    return write_yaml(tmp_path / "config.yaml", cfg)


def _env(**extra):
    keys = ("D2STREAM_CACHE", "D2STREAM_ZOO_URL", "D2STREAM_ZOO_CATALOG")
    return subprocess_env({**{k: os.environ[k] for k in keys}, **extra})


def test_zoo_reference_is_valid_config(mirror, tmp_path):
    config = load_config(_config(tmp_path, mirror))  # check_files: no file exists yet
    assert str(config.model.path) == f"zoo:{mirror.entry}"


def test_daemon_exports_zoo_model_on_first_start_then_uses_cache(mirror, tmp_path):
    config = _config(tmp_path, mirror)
    first = DaemonProcess(config, tmp_path, env=_env())
    assert first.wait(180) == 0, first.stderr()
    onnx = zoo_onnx_path(mirror.entry, mirror.cache)
    assert onnx.is_file() and "exporting it once" in first.stderr()
    assert len(mirror.server.script.requests) == 1
    mtime = onnx.stat().st_mtime_ns
    second = DaemonProcess(config, tmp_path, env=_env(D2STREAM_OFFLINE="1"))
    assert second.wait(180) == 0, second.stderr()
    assert "from the cache" in second.stderr() and onnx.stat().st_mtime_ns == mtime
    assert len(mirror.server.script.requests) == 1


def test_daemon_zoo_model_offline_without_cache_is_a_config_error(mirror, tmp_path):
    proc = DaemonProcess(_config(tmp_path, mirror), tmp_path, env=_env(D2STREAM_OFFLINE="1"))
    rc = proc.wait(120)
    assert rc != 0
    assert "model.path" in proc.stderr() and "offline mode is on" in proc.stderr()
    assert "Traceback" not in proc.stderr()
