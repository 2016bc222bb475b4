"""Many live-view clients at once (loopback): readers, viewers that never read, viewers over the
limit, status pollers. Detection must not notice: every frame of a lossless video is inferred
and the run ends normally. (The fps comparison is ``benchmarks/http_load_bench.py``.)"""

from __future__ import annotations

import http.client
from pathlib import Path

from tests.daemon.daemon_helpers import DaemonProcess, daemon_config, free_port, write_yaml
from tests.daemon.reliability.fault_helpers import health, report_figure, wait_for
from tests.daemon.reliability.http_clients import Crowd

FRAMES = 60
READERS = 12
STALLED = 8
MAX_CLIENTS = READERS + STALLED


def test_many_clients_do_not_hold_up_detection(tmp_path: Path, demo_model: Path,
                                               demo_video) -> None:  # noqa: ANN001
    video, _ = demo_video(FRAMES, seed=16)
    port = free_port()
    config = daemon_config(
        demo_model, video,
        cameras=[{"name": "cam", "source": {"type": "opencv", "url": str(video),
                                            "realtime": False}}],
        outputs={"http": {"enabled": True, "port": port, "max_clients": MAX_CLIENTS,
                          "max_connections": MAX_CLIENTS + 16, "client_timeout_s": 2,
                          "max_fps": 1000}},
        worker={"start_timeout_s": 300},
        detect={"fps": 0}, motion={"enabled": False})  # every frame goes to the model
    daemon = DaemonProcess(write_yaml(tmp_path / "c.yaml", config), tmp_path)
    # The model waits for nobody: the crowd comes as soon as the server answers.
    wait_for(lambda: health(port), 240, "the live view", daemon.stderr)
    crowd = Crowd(port, readers=READERS, stalled=STALLED)
    crowd.start()
    try:
        over = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        wait_for(lambda: health(port).get("faults", {}).get("http", {}).get("rejected", {})
                 .get("clients", 0) > 0 or (_ask(over) == 503), 60, "a refused extra viewer")
        code = daemon.wait(600)  # the video ends: the run ends
    finally:
        crowd.close()
        daemon.kill()
    assert code == 0, daemon.stderr()
    stats = daemon.stats()
    cam = stats["cameras"]["cam"]
    assert cam["captured"] == cam["processed"] == FRAMES and cam["dropped"] == 0
    assert stats["faults"]["http"]["rejected"]["clients"] >= 1
    assert sum(1 for c in crowd.counts if c > 0) >= READERS // 2  # viewers were served
    report_figure("http_load_clients", crowd.size)
    report_figure("http_load_frames_streamed", sum(crowd.counts))


def _ask(conn: http.client.HTTPConnection) -> int:
    try:
        conn.request("GET", "/stream/cam.mjpg")
        response = conn.getresponse()
        status = response.status
        conn.close()
        return status
    except OSError:
        return 0
