"""Camera sources on real files and streams, and the producer's reopen-with-backoff."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from daemon.config import parse_config
from daemon.config.schema import CameraSection, ReopenSection
from daemon.pipeline.frame_queue import FrameHub
from daemon.pipeline.producer import Backoff, Producer
from daemon.sources import create_source
from daemon.sources.base import SourceError
from daemon.sources.opencv_capture import stream_address
from daemon.structures.metrics import Metrics
from tests.daemon.daemon_helpers import free_port, wait_until
from tests.daemon.mjpeg_server import MjpegCamera


def camera(source: str, base: Path, reopen: str = "") -> CameraSection:
    text = (f"model: {{path: m.onnx}}\ncameras:\n  - name: cam\n    source: {source}\n"
            + (f"    reopen: {reopen}\n" if reopen else ""))
    return parse_config(text, base_dir=base, env={}, check_files=False).cameras[0]


def read_all(source, limit: int = 1000) -> list[np.ndarray]:  # noqa: ANN001
    source.open()
    images = []
    while len(images) < limit:
        captured = source.read()
        if captured is None:
            break
        images.append(captured.image)
    source.close()
    return images


def test_video_file_lossless_and_realtime(demo_video, tmp_path: Path) -> None:  # noqa: ANN001
    video, truth = demo_video(8)
    lossless = create_source(camera(f"{{type: opencv, url: '{video}', realtime: false}}",
                                    tmp_path))
    assert lossless.lossless and lossless.pace_fps is None
    images = read_all(lossless)
    assert len(images) == len(truth) == 8
    assert images[0].shape == (240, 320, 3) and images[0].dtype == np.uint8
    realtime = create_source(camera(f"{{type: opencv, url: '{video}'}}", tmp_path))
    realtime.open()
    assert not realtime.lossless and realtime.pace_fps == pytest.approx(10.0)
    realtime.close()


def test_video_file_loop_rewinds(demo_video, tmp_path: Path) -> None:  # noqa: ANN001
    video, _ = demo_video(8)
    looped = create_source(camera(f"{{type: opencv, url: '{video}', loop: true}}", tmp_path))
    images = read_all(looped, limit=20)
    assert len(images) == 20
    assert np.abs(images[8].astype(int) - images[0].astype(int)).mean() < 3  # frame 0 again


def test_image_folder_in_name_order_skipping_unreadable(tmp_path: Path) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    for i, value in enumerate((10, 20, 30)):
        cv2.imwrite(str(folder / f"img_{i}.png"), np.full((8, 8, 3), value, np.uint8))
    (folder / "img_1b.jpg").write_bytes(b"not an image")
    (folder / "notes.txt").write_text("ignored")
    source = create_source(camera(f"{{type: folder, path: '{folder}'}}", tmp_path))
    assert source.lossless
    assert [int(img[0, 0, 0]) for img in read_all(source)] == [10, 20, 30]
    looped = create_source(camera(f"{{type: folder, path: '{folder}', loop: true, fps: 5}}",
                                  tmp_path))
    assert not looped.lossless and looped.pace_fps == 5
    assert [int(img[0, 0, 0]) for img in read_all(looped, limit=5)] == [10, 20, 30, 10, 20]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SourceError, match="camera 'cam': no images matching"):
        create_source(camera(f"{{type: folder, path: '{empty}'}}", tmp_path)).open()


def test_unopenable_device_and_stream_are_source_errors(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"camera 'cam': cannot open device '/dev/video99'"):
        create_source(camera("{type: opencv, url: /dev/video99}", tmp_path)).open()
    url = f"http://127.0.0.1:{free_port()}/nothing.mjpg"
    with pytest.raises(SourceError, match="cannot open stream"):
        create_source(camera(f"{{type: opencv, url: '{url}', open_timeout_s: 2}}",
                             tmp_path)).open()


def test_backoff_sequence() -> None:
    backoff = Backoff(ReopenSection(initial_delay_s=0.5, multiplier=2, max_delay_s=3,
                                    max_attempts=5))
    delays = [backoff.next_delay() for _ in range(5)]
    assert delays == [0.5, 1.0, 2.0, 3.0, 3.0] and backoff.exhausted()


def run_producer(cam: CameraSection) -> tuple[Producer, FrameHub, Metrics, threading.Event]:
    hub, metrics, stop = FrameHub(), Metrics(), threading.Event()
    source = create_source(cam)
    hub.add(cam.name, 100, lossless=True)
    metrics.add_camera(cam.name)
    return Producer(source, cam.reopen, hub, metrics, stop), hub, metrics, stop


def drain(hub: FrameHub) -> list[int]:
    return [f.seq for f in iter(lambda: hub.take(timeout=0.01), None)]


def test_a_stream_that_hangs_up_is_reopened_and_numbering_goes_on(tmp_path: Path) -> None:
    with MjpegCamera(per_connection=6, fps=30) as server:
        cam = camera(f"{{type: opencv, url: '{server.url}', open_timeout_s: 5, "
                     "read_timeout_s: 5}", tmp_path, reopen="{initial_delay_s: 0.1}")
        producer, hub, metrics, stop = run_producer(cam)
        producer.start()
        seqs: list[int] = []
        assert wait_until(lambda: seqs.extend(drain(hub)) or metrics.cameras["cam"].reopens >= 2
                          and len(seqs) > 12, 60), (seqs, server.connections)
        stop.set()
        producer.join(10)
    assert seqs == list(range(len(seqs)))  # one numbering across reconnections
    assert server.connections >= 3


def test_start_failure_policy(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/cam.mjpg"
    failing = camera(f"{{type: opencv, url: '{url}', open_timeout_s: 2}}", tmp_path,
                     reopen="{on_start_failure: fail}")
    producer, hub, metrics, stop = run_producer(failing)
    producer.start()
    assert producer.wait_started(stop, 30)
    assert isinstance(producer.start_error, SourceError)
    producer.join(30)  # fail: the thread ends without retrying
    assert not producer.is_alive() and hub.all_finished()
    giving_up = camera(f"{{type: opencv, url: '{url}', open_timeout_s: 2}}", tmp_path,
                       reopen="{initial_delay_s: 0.05, probe_interval_s: 0.05, "
                              "max_attempts: 3}")
    producer, hub, metrics, stop = run_producer(giving_up)
    producer.start()  # retry, the default: retried in the background
    assert producer.wait_started(stop, 30) and producer.start_error is not None
    producer.join(30)
    assert not producer.is_alive() and hub.all_finished()
    assert metrics.cameras["cam"].finished and not metrics.cameras["cam"].connected


def test_probes_tell_a_camera_that_is_away_cheaply(tmp_path: Path) -> None:
    """The reopen loop probes before each full open: a refused TCP connection, a missing
    device node or file answer at once."""
    url = f"http://127.0.0.1:{free_port()}/cam.mjpg"
    away = create_source(camera(f"{{type: opencv, url: '{url}', open_timeout_s: 5}}",
                                tmp_path))
    started = time.monotonic()
    assert not away.probe() and time.monotonic() - started < 1.5
    assert not create_source(camera("{type: opencv, url: /dev/video99}", tmp_path)).probe()
    assert stream_address("rtsp://user:pw@cam.local/live") == ("cam.local", 554)
    assert stream_address("http://10.0.0.2:8081/x.mjpg") == ("10.0.0.2", 8081)
    assert stream_address("udp://@:1234") is None
    with MjpegCamera(per_connection=1) as server:
        assert create_source(camera(f"{{type: opencv, url: '{server.url}'}}",
                                    tmp_path)).probe()
