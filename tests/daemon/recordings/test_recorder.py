"""A recorder whose camera is not reachable yet keeps probing it, and remuxes it once it is
there (it is not mistaken for a stream that cannot be remuxed)."""

from __future__ import annotations

from pathlib import Path

from daemon.config import parse_config
from daemon.recordings.db import EventDB
from daemon.recordings.recorder import CameraRecorder
from tests.daemon.daemon_helpers import free_port, wait_until
from tests.daemon.h264_stream import H264HttpCamera, make_h264


def test_an_unreachable_stream_is_probed_again_then_remuxed(tmp_path: Path,
                                                            demo_video) -> None:  # noqa: ANN001
    port = free_port()
    (tmp_path / "m.onnx").write_bytes(b"onnx")
    config = parse_config(
        f"model: {{path: m.onnx}}\ncameras: [{{name: cam, source: {{type: opencv, url: "
        f"'http://127.0.0.1:{port}/cam.ts'}}}}]\noutputs: {{database: {{enabled: true}}, "
        f"recordings: {{enabled: true, segment_s: 1}}}}\n", name="config.yaml",
        base_dir=tmp_path, env={})
    camera = config.cameras[0]
    db = EventDB(config.outputs.database.path)
    recorder = CameraRecorder(camera, config.camera_record(camera), config.outputs.recordings,
                              db)
    recorder.start()
    server = None
    try:
        assert wait_until(lambda: recorder.failure, 60, 0.1)
        assert not recorder.encoding
        video = make_h264(demo_video(30, seed=6)[0], tmp_path / "cam.mp4")
        server = H264HttpCamera(video, port).start()
        assert wait_until(lambda: len(db.segments("cam", None, None)) >= 2, 120, 0.2)
        assert not recorder.encoding and recorder.failure is None
    finally:
        recorder.stop(10)
        if server is not None:
            server.stop()
