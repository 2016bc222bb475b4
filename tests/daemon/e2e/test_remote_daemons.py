"""Four ``d2stream run`` daemons, each on its own video, against one ``d2stream serve``.

Their event logs (every frame inferred: ``detect.fps`` 0, videos read losslessly) equal those
of one daemon inferring the same four videos locally, wall-clock times aside.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.daemon.daemon_helpers import DaemonProcess, daemon_config, read_jsonl, write_yaml
from tests.daemon.serve_process import ServeProcess

FRAMES = 8
CAMERAS = 4
TIMES = ("id", "start_time", "last_time", "end_time")


def _strip(message: dict[str, Any]) -> dict[str, Any]:
    sides = {k: None if v is None else {f: x for f, x in v.items() if f not in TIMES}
             for k, v in message.items() if k in ("before", "after")}
    for side in sides.values():
        if side and isinstance(side.get("best"), dict):
            side["best"] = {f: x for f, x in side["best"].items() if "time" not in f}
    return {"type": message["type"], **sides}


def _events(path: Path, camera: str) -> list[dict[str, Any]]:
    return [_strip(m) for m in read_jsonl(path) if m["after"]["camera"] == camera]


def _camera(name: str, video: Path) -> dict[str, Any]:
    return {"name": name, "source": {"type": "opencv", "url": str(video), "realtime": False}}


def test_four_remote_daemons_equal_local_inference(tmp_path: Path, demo_model: Path,
                                                   demo_video) -> None:  # noqa: ANN001
    videos = [demo_video(FRAMES, seed=20 + i)[0] for i in range(CAMERAS)]
    server = ServeProcess(demo_model, tmp_path)
    daemons = []
    try:
        for i, video in enumerate(videos):
            work = tmp_path / f"remote{i}"
            work.mkdir()
            config = daemon_config(demo_model, video, detect={"fps": 0})
            config["cameras"] = [_camera(f"cam{i}", video)]
            config["model"].update(num_threads=1, backend="remote", remote={
                "url": server.url, "model_name": "demo", "timeout_s": 120})
            daemons.append(DaemonProcess(write_yaml(work / "config.yaml", config), work))
        for daemon in daemons:
            assert daemon.wait(timeout=400) == 0, daemon.stderr()
        assert "Traceback" not in "".join(d.stderr() for d in daemons)
    finally:
        for daemon in daemons:
            daemon.kill()
        server.kill()
    local_dir = tmp_path / "local"
    local_dir.mkdir()
    config = daemon_config(demo_model, videos[0], detect={"fps": 0})
    config["cameras"] = [_camera(f"cam{i}", v) for i, v in enumerate(videos)]
    local = DaemonProcess(write_yaml(local_dir / "config.yaml", config), local_dir)
    assert local.wait(timeout=400) == 0, local.stderr()
    for i, daemon in enumerate(daemons):
        cam = daemon.stats()["cameras"][f"cam{i}"]
        assert cam["processed"] == FRAMES and cam["dropped"] == 0
        remote = daemon.stats()["remote"]  # the counters /healthz and /metrics show
        assert remote["requests"] == FRAMES and remote["failures"] == remote["fallbacks"] == 0
        remote_events = _events(daemon.workdir / "events.jsonl", f"cam{i}")
        assert remote_events, f"cam{i} made no events"
        assert remote_events == _events(local_dir / "events.jsonl", f"cam{i}")


@pytest.mark.parametrize("fallback", ["local"])
def test_daemon_falls_back_to_the_local_model_when_the_server_is_gone(
        tmp_path: Path, demo_model: Path, demo_video, fallback: str) -> None:  # noqa: ANN001
    video, _ = demo_video(4 * FRAMES, seed=30)  # long enough to outlast the server
    server = ServeProcess(demo_model, tmp_path)
    config = daemon_config(demo_model, video, detect={"fps": 0})
    config["model"].update(num_threads=1, backend="remote", remote={
        "url": server.url, "model_name": "demo", "timeout_s": 30, "retries": 1,
        "backoff_s": 0.05, "fallback": fallback})
    work = tmp_path / "d"
    work.mkdir()
    daemon = DaemonProcess(write_yaml(work / "config.yaml", config), work)
    try:
        assert daemon.wait_for_log("loaded", timeout=300), daemon.stderr()
        server.kill()  # every frame now goes to the local model
        assert daemon.wait(timeout=400) == 0, daemon.stderr()
    finally:
        daemon.kill()
        server.kill()
    cam = daemon.stats()["cameras"]["cam"]
    assert cam["processed"] == 4 * FRAMES and daemon.stats()["worker"]["frames_lost"] == 0
    assert "inferring this frame with the local model" in daemon.stderr()
    remote = daemon.stats()["remote"]
    assert remote["fallbacks"] == remote["failures"] > 0 and remote["retries"] > 0


def test_daemon_recovers_when_the_server_is_killed_and_restarted(
        tmp_path: Path, demo_model: Path, demo_video) -> None:  # noqa: ANN001
    video, _ = demo_video(6 * FRAMES, seed=31)
    server = ServeProcess(demo_model, tmp_path)
    config = daemon_config(demo_model, video, detect={"fps": 0})
    config["model"].update(num_threads=1, backend="remote", remote={
        "url": server.url, "model_name": "demo", "timeout_s": 30, "retries": 8,
        "backoff_s": 0.2, "fallback": "drop"})
    work = tmp_path / "d"
    work.mkdir()
    daemon = DaemonProcess(write_yaml(work / "config.yaml", config), work)
    try:
        assert daemon.wait_for_log("loaded", timeout=300), daemon.stderr()
        server.kill()
        server.start()  # same port; the retries (0.2 s doubling, 8 times) outlast the restart
        assert daemon.wait(timeout=400) == 0, daemon.stderr()
    finally:
        daemon.kill()
        server.kill()
    stats = daemon.stats()
    assert stats["cameras"]["cam"]["processed"] == 6 * FRAMES
    assert stats["worker"]["frames_lost"] == 0 and stats["remote"]["failures"] == 0
    assert stats["remote"]["retries"] > 0  # the outage was hit, and bridged
    assert stats["remote"]["requests"] == 6 * FRAMES + stats["remote"]["retries"]
    assert read_jsonl(work / "events.jsonl")  # events accepted before and after: all written
