"""The recording output refuses to start without ffmpeg, naming the key (one line)."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.config import ConfigError, parse_config
from daemon.sinks.recording import RecordingSink
from daemon.structures.metrics import Metrics


def test_missing_ffmpeg_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "m.onnx").write_bytes(b"onnx")
    config = parse_config(
        "model: {path: m.onnx}\ncameras: [{name: c, source: {type: opencv, url: "
        "'rtsp://127.0.0.1/s'}}]\noutputs: {database: {enabled: true}, recordings: "
        "{enabled: true, ffmpeg: /no/such/ffmpeg}}\n", name="config.yaml", base_dir=tmp_path,
        env={})
    with pytest.raises(ConfigError) as info:
        RecordingSink(config, 2, Metrics()).open()
    message = str(info.value)
    assert "outputs.recordings.ffmpeg" in message and "/no/such/ffmpeg" in message
    assert "\n" not in message
