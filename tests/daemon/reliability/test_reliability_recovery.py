"""A network camera unplugged mid-stream and plugged back; the model worker killed with SIGKILL
mid-inference. The daemon (one process, never restarted) recovers from both by itself."""

from __future__ import annotations

import os
import re
import signal
import urllib.request
from pathlib import Path

from tests.daemon.daemon_helpers import (
    DaemonProcess,
    daemon_config,
    free_port,
    read_jsonl,
    write_yaml,
)
from tests.daemon.reliability.fault_helpers import (
    FlakyCamera,
    health,
    now,
    report_figure,
    wait_for,
)

OUTAGE_S = 5.0


def test_camera_unplugged_then_back_is_reopened_without_a_restart(
        tmp_path: Path, demo_model: Path, demo_video) -> None:  # noqa: ANN001
    video, _ = demo_video(4)
    port = free_port()
    camera = FlakyCamera(fps=10)
    camera.plug()
    config = daemon_config(demo_model, video, cameras=[{
        "name": "door", "source": {"type": "opencv", "url": camera.url, "open_timeout_s": 3,
                                   "read_timeout_s": 3},
        "reopen": {"initial_delay_s": 0.2, "multiplier": 2, "max_delay_s": 1}}],
        outputs={"http": {"enabled": True, "port": port}})
    daemon = DaemonProcess(write_yaml(tmp_path / "c.yaml", config), tmp_path)
    try:
        wait_for(lambda: health(port).get("status") == "ok", 180, "a healthy start",
                 daemon.stderr)
        camera.unplug()
        unplugged = now()
        down = wait_for(lambda: (h := health(port)) and not h["cameras"]["door"]["connected"]
                        and h, 60, "the camera loss in /healthz", daemon.stderr)
        assert down["status"] == "degraded"
        assert down["faults"]["cameras"]["door"]["down_for_s"] is not None
        wait_for(lambda: now() - unplugged >= OUTAGE_S, OUTAGE_S + 1, "the outage")
        camera.plug()
        plugged = now()
        back = wait_for(lambda: (h := health(port)) and h["status"] == "ok"
                        and h["cameras"]["door"]["connected"] and h, 120,
                        "the camera to be reopened", daemon.stderr)
        seen_back = now() - plugged
        processed = back["cameras"]["door"]["processed"]
        wait_for(lambda: health(port)["cameras"]["door"]["processed"] > processed + 5, 60,
                 "inference after the reopening", daemon.stderr)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
            metrics = r.read().decode()
    finally:
        code = daemon.terminate()
        camera.unplug()
    assert code == 0, daemon.stderr()  # it ran until SIGTERM: never restarted
    stats = daemon.stats()
    faults = stats["faults"]["cameras"]["door"]
    assert faults["outages"] >= 1 and stats["cameras"]["door"]["reopens"] >= 1
    recovery = faults["last_recovery_s"]
    assert recovery >= OUTAGE_S  # lost until frames flow again, the outage included
    assert re.search(r'^d2stream_camera_recovery_seconds\{camera="door"\} [0-9.]+$', metrics,
                     re.MULTILINE)
    assert "camera 'door': opencv stream" in daemon.stderr() and "reopened after" in \
        daemon.stderr()
    frames = [e["after"]["frame"] for e in read_jsonl(tmp_path / "events.jsonl")]
    assert max(frames) > 10  # objects were still tracked after the reopening
    report_figure("camera_outage_s", OUTAGE_S)
    report_figure("camera_time_to_recover_s", recovery)
    report_figure("camera_recovered_after_return_s", round(recovery - OUTAGE_S, 2))
    report_figure("camera_recovery_seen_in_healthz_s", round(seen_back, 2))


def test_worker_killed_mid_inference_every_frame_accounted(
        tmp_path: Path, demo_model: Path, demo_video) -> None:  # noqa: ANN001
    frames = 60
    video, _ = demo_video(frames, seed=12)
    port = free_port()
    config = daemon_config(demo_model, video, cameras=[{
        "name": "cam", "source": {"type": "opencv", "url": str(video), "realtime": False}}],
        outputs={"http": {"enabled": True, "port": port}},
        worker={"restart_delay_s": 0.1},
        detect={"fps": 0}, motion={"enabled": False})  # every frame goes to the model
    daemon = DaemonProcess(write_yaml(tmp_path / "c.yaml", config), tmp_path)
    first = wait_for(lambda: (h := health(port)) and h.get("cameras", {}).get("cam", {})
                     .get("processed", 0) >= 5 and h, 180, "inference", daemon.stderr)
    pid = first["worker"]["pid"]
    os.kill(pid, signal.SIGKILL)  # the worker is always busy: frames are read losslessly
    killed = now()
    restarted = wait_for(lambda: (h := health(port)) and h.get("worker", {}).get("alive")
                         and h["worker"]["pid"] != pid and h, 120, "a new worker",
                         daemon.stderr)
    seen_back = now() - killed
    assert daemon.wait(300) == 0, daemon.stderr()  # the video ends: no hang
    stats = daemon.stats()
    cam, worker = stats["cameras"]["cam"], stats["worker"]
    assert worker["restarts"] == 1 and restarted["worker"]["restarts"] == 1
    assert cam["captured"] == frames and cam["dropped"] == 0
    assert worker["frames_lost"] <= 1
    assert cam["processed"] + worker["frames_lost"] == frames  # every frame accounted for
    assert f"worker pid {pid} died (exit code -9); {worker['frames_lost']} frame(s) lost" in \
        daemon.stderr()
    restart_s = stats["faults"]["worker"]["last_restart_s"]
    assert restart_s is not None and restart_s > 0
    report_figure("worker_frames_lost_per_kill", worker["frames_lost"])
    report_figure("worker_restart_s", restart_s)
    report_figure("worker_restart_seen_in_healthz_s", round(seen_back, 2))
