"""Daemon YAML schema: defaults, path resolution, env expansion and one-line errors by key."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.config import EXIT_CONFIG, ConfigError, load_config, parse_config
from daemon.config.loader import format_key_path


@pytest.fixture()
def base(tmp_path: Path) -> Path:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "m.onnx").write_bytes(b"onnx")
    (tmp_path / "clip.mp4").write_bytes(b"video")
    (tmp_path / "frames").mkdir()
    return tmp_path


MINIMAL = """
model: {path: models/m.onnx}
cameras:
  - name: front
    source: {type: opencv, url: clip.mp4}
"""


def error_of(text: str, base: Path, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(text, name="config.yaml", base_dir=base, env=env or {})
    message = str(info.value)
    assert "\n" not in message
    assert info.value.exit_code == EXIT_CONFIG == 78
    return message


def test_minimal_config_gets_documented_defaults_and_absolute_paths(base: Path) -> None:
    cfg = parse_config(MINIMAL, base_dir=base, env={})
    assert cfg.model.path == (base / "models" / "m.onnx").resolve()
    camera = cfg.cameras[0]
    assert camera.source.url == str((base / "clip.mp4").resolve())
    assert camera.source.kind() == "file"
    assert camera.queue_size == 2 and camera.reopen.on_start_failure == "retry"
    assert cfg.outputs.event_log.enabled and cfg.outputs.event_log.fsync == "interval"
    assert cfg.outputs.event_log.path == (base / "var" / "events.jsonl").resolve()
    assert cfg.outputs.http.host == "127.0.0.1" and not cfg.outputs.http.enabled
    assert not cfg.outputs.mqtt.enabled and cfg.outputs.mqtt.topic_prefix == "d2stream"


@pytest.mark.parametrize(("url", "kind", "value"), [
    (0, "device", 0), ("2", "device", 2), ("/dev/video3", "device", "/dev/video3"),
    ("rtsp://cam.local:554/stream1", "stream", "rtsp://cam.local:554/stream1"),
    ("http://127.0.0.1:8081/video.mjpg", "stream", "http://127.0.0.1:8081/video.mjpg"),
])
def test_capture_urls(base: Path, url: object, kind: str, value: object) -> None:
    text = MINIMAL.replace("url: clip.mp4", f"url: {url!r}" if isinstance(url, str) else
                           f"url: {url}")
    camera = parse_config(text, base_dir=base, env={}).cameras[0]
    assert camera.source.kind() == kind and camera.source.url == value


def test_unknown_key_is_named(base: Path) -> None:
    message = error_of(MINIMAL + "outputs:\n  http: {enabled: true, prot: 8080}\n", base)
    assert message == "config.yaml: outputs.http.prot: unknown key"


def test_wrong_type_is_named_with_the_value(base: Path) -> None:
    text = MINIMAL.replace("model: {path: models/m.onnx}",
                           "model: {path: models/m.onnx, num_threads: many}")
    message = error_of(text, base)
    assert message.startswith("config.yaml: model.num_threads: input should be a valid integer")
    assert "'many'" in message


def test_missing_model_file(base: Path) -> None:
    message = error_of(MINIMAL.replace("m.onnx", "absent.onnx"), base)
    expected = (base / "models" / "absent.onnx").resolve()
    assert message == f"config.yaml: model.path: model file not found: {expected}"


@pytest.mark.parametrize(("source", "key", "problem"), [
    ("{type: webcam, url: 0}", "cameras[0].source.type", "unknown source type 'webcam'"),
    ("{url: 0}", "cameras[0].source.type", "missing source type"),
    ("{type: opencv}", "cameras[0].source.url", "field required"),
    ("{type: opencv, url: 'ftp://host/x'}", "cameras[0].source.url",
     "unsupported stream scheme 'ftp'"),
    ("{type: opencv, url: 'rtsp:///nohost'}", "cameras[0].source.url", "stream URL has no host"),
    ("{type: opencv, url: /dev/sda}", "cameras[0].source.url", "not a V4L2 capture device"),
    ("{type: opencv, url: missing.mp4}", "cameras[0].source.url", "video file not found"),
    ("{type: opencv, url: -1}", "cameras[0].source.url", "a device index is 0 or more"),
    ("{type: opencv, url: ''}", "cameras[0].source.url", "empty camera URL"),
    ("{type: folder, path: nowhere}", "cameras[0].source.path", "image folder not found"),
    ("{type: picamera2, main_size: [640]}", "cameras[0].source.main_size[1]", "field required"),
    ("{type: picamera2, stall_timeout_s: 0}", "cameras[0].source.stall_timeout_s",
     "greater than 0"),
])
def test_bad_camera_specs_name_the_key(base: Path, source: str, key: str, problem: str) -> None:
    text = f"model: {{path: models/m.onnx}}\ncameras:\n  - name: a\n    source: {source}\n"
    message = error_of(text, base)
    assert message.startswith(f"config.yaml: {key}: "), message
    assert problem in message


def test_every_problem_is_reported_on_the_same_line(base: Path) -> None:
    text = ("model: {path: models/m.onnx, bogus: 1}\n"
            "cameras:\n  - name: 'bad name'\n    source: {type: opencv}\n")
    message = error_of(text, base)
    assert "model.bogus: unknown key" in message
    assert "cameras[0].name: string should match pattern" in message
    assert "cameras[0].source.url: field required" in message


@pytest.mark.parametrize(("text", "expected"), [
    ("", "config.yaml: empty config"),
    ("- a\n- b\n", "config.yaml: expected a mapping at the top level, got list"),
    ("model: {path: x\n", "config.yaml: invalid YAML: line 2, column 1"),
    ("cameras: []\nmodel: {path: models/m.onnx}\n",
     "config.yaml: cameras: list should have at least 1 item"),
])
def test_malformed_documents(base: Path, text: str, expected: str) -> None:
    assert error_of(text, base).startswith(expected)


def test_semantic_checks(base: Path) -> None:
    two = MINIMAL + "  - name: front\n    source: {type: folder, path: frames}\n"
    assert error_of(two, base) == ("config.yaml: cameras[1].name: duplicate camera name "
                                   "'front' (also cameras[0])")
    disabled = MINIMAL.replace("  - name: front\n", "  - name: front\n    enabled: false\n")
    assert error_of(disabled, base) == "config.yaml: cameras: no camera is enabled"
    low = MINIMAL + "events: {min_score: 0.2}\n"
    assert error_of(low, base).startswith("config.yaml: events.min_score: 0.2 is below")


def test_environment_expansion(base: Path) -> None:
    text = MINIMAL.replace("url: clip.mp4", "url: '${CAM:-clip.mp4}'") + \
        "outputs:\n  http: {enabled: true, port: '${PORT}'}\n"
    cfg = parse_config(text, base_dir=base, env={"PORT": "9123"})
    assert cfg.outputs.http.port == 9123
    assert cfg.cameras[0].source.url.endswith("clip.mp4")
    cfg = parse_config(text, base_dir=base, env={"PORT": "1", "CAM": "/dev/video7"})
    assert cfg.cameras[0].source.url == "/dev/video7"
    assert error_of(text, base) == \
        "config.yaml: outputs.http.port: environment variable PORT is not set"


def test_load_config_reports_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.yaml")
    assert str(info.value) == f"{tmp_path / 'nope.yaml'}: config file not found"


def test_key_path_formatting() -> None:
    assert format_key_path(("cameras", 0, "source", "opencv", "url")) == "cameras[0].source.url"
    assert format_key_path(("outputs", "mqtt", "port")) == "outputs.mqtt.port"
    assert format_key_path(()) == "(top level)"


def test_repository_config_yaml_is_valid_and_documents_every_key() -> None:
    from tests.daemon.daemon_helpers import REPO_ROOT

    path = REPO_ROOT / "config.yaml"
    cfg = load_config(path, env={}, check_files=False)
    assert cfg.cameras and cfg.model.path.name.endswith(".onnx")
    lines = path.read_text(encoding="utf-8").splitlines()
    keys = [i for i, line in enumerate(lines)
            if line.strip() and not line.lstrip().startswith("#")
            and ":" in line]
    undocumented = [lines[i].strip() for i in keys
                    if not _commented(lines, i)]
    assert not undocumented, f"config.yaml keys without a comment: {undocumented}"


def _commented(lines: list[str], index: int) -> bool:
    """A key line has a trailing comment or a comment line right above it."""
    if "#" in lines[index]:
        return True
    return index > 0 and lines[index - 1].lstrip().startswith("#")


def test_new_live_view_and_reopen_keys_name_themselves(base: Path) -> None:
    overlay = MINIMAL + "outputs: {http: {overlay: boxes}}\n"
    message = error_of(overlay, base)
    assert message.startswith("config.yaml: outputs.http.overlay: "), message
    assert "'tracked' or 'detections'" in message
    probe = MINIMAL.replace("  - name: front\n",
                            "  - name: front\n    reopen: {probe_interval_s: 30}\n")
    message = error_of(probe, base)
    assert message.startswith("config.yaml: cameras[0].reopen.probe_interval_s: "), message
