"""The ``record:`` section (per camera overridable) and the database/recordings outputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.config import ConfigError, parse_config

CONFIG = """
model: {{path: m.onnx}}
record: {{mode: events, pre_capture_s: 3}}
cameras:
  - name: front
    source: {{type: opencv, url: "rtsp://127.0.0.1/s"}}
    record: {{mode: continuous, encode: {{fps: 5}}}}
  - name: back
    source: {{type: opencv, url: "rtsp://127.0.0.1/t"}}
outputs: {outputs}
"""


def parse(tmp_path: Path, outputs: str = "{}"):  # noqa: ANN201
    (tmp_path / "m.onnx").write_bytes(b"onnx")
    return parse_config(CONFIG.format(outputs=outputs), name="config.yaml", base_dir=tmp_path,
                        env={})


def test_cameras_override_record_key_by_key(tmp_path: Path) -> None:
    config = parse(tmp_path, "{database: {enabled: true}, recordings: {enabled: true}}")
    front, back = (config.camera_record(c) for c in config.cameras)
    assert (front.mode, front.pre_capture_s, front.encode.fps) == ("continuous", 3, 5)
    assert (back.mode, back.pre_capture_s, back.post_capture_s) == ("events", 3, 5)
    assert config.outputs.recordings.dir == tmp_path / "var" / "recordings"
    assert config.outputs.database.path == tmp_path / "var" / "events.db"


def test_recordings_need_the_database(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        parse(tmp_path, "{recordings: {enabled: true}}")
    assert "outputs" in str(info.value) and "database.enabled" in str(info.value)


def test_bad_record_values_name_the_key(tmp_path: Path) -> None:
    (tmp_path / "m.onnx").write_bytes(b"onnx")
    text = CONFIG.format(outputs="{}").replace("mode: continuous", "mode: always")
    with pytest.raises(ConfigError) as info:
        parse_config(text, name="config.yaml", base_dir=tmp_path, env={})
    assert "cameras[0].record.mode" in str(info.value)
