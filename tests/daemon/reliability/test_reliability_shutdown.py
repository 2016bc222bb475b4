"""SIGTERM in the middle of heavy load, and SIGKILL (a power cut as far as the process can tell)
at random moments: the event log and the MQTT outbox are valid and complete up to the end.

"Complete" is checked through each event's chain of messages: every message names the previous
one (``before`` is the previous ``after``), so a message lost in the middle of a file breaks a
chain; a kill can only cut the end of a file.
"""

from __future__ import annotations

import random
import signal
import threading
import urllib.request
from pathlib import Path
from typing import Any

from tests.daemon.daemon_helpers import DaemonProcess, daemon_config, free_port, write_yaml
from tests.daemon.reliability.fault_helpers import (
    Broker,
    PersistentSubscriber,
    check_chains,
    health,
    log_lines,
    message_key,
    outbox_records,
    pending_ids,
    report_figure,
    wait_for,
)

PREFIX = "shutdown"
CHATTY = {"update_interval_s": 0.2, "update_box_iou": 0.95}


def watch_streams(port: int, count: int, stop: threading.Event) -> list[threading.Thread]:
    """``count`` live-view viewers reading MJPEG until ``stop`` (or the server goes)."""
    def viewer() -> None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/stream/cam0.mjpg",
                                        timeout=30) as response:
                while not stop.is_set() and response.read(65536):
                    pass
        except OSError:
            pass

    threads = [threading.Thread(target=viewer, daemon=True) for _ in range(count)]
    for thread in threads:
        thread.start()
    return threads


def heavy_config(demo_model: Path, video: Path, port: int, mqtt_port: int) -> dict[str, Any]:
    cameras = [{"name": f"cam{i}", "source": {"type": "opencv", "url": str(video),
                                               "realtime": False, "loop": i > 0}}
               for i in range(3)]
    return daemon_config(
        demo_model, video, cameras=cameras,
        outputs={"http": {"enabled": True, "port": port},
                 "snapshots": {"enabled": True, "dir": "snapshots"},
                 "mqtt": {"enabled": True, "port": mqtt_port, "topic_prefix": PREFIX,
                          "outbox": {"path": "outbox.jsonl"}},
                 "event_log": {"fsync": "interval", "fsync_interval_s": 0.5}},
        detect={"fps": 0}, motion={"enabled": False}, events=CHATTY,
        service={"stop_timeout_s": 20})


def test_sigterm_under_heavy_load(tmp_path: Path, demo_model: Path, demo_video) -> None:  # noqa: ANN001
    video, _ = demo_video(400, seed=9)
    broker = Broker.create(tmp_path / "broker")
    broker.start()
    subscriber = PersistentSubscriber(broker.port, PREFIX, "shutdown-sub")
    port = free_port()
    daemon = DaemonProcess(write_yaml(tmp_path / "c.yaml",
                                      heavy_config(demo_model, video, port, broker.port)),
                           tmp_path)
    stop = threading.Event()
    try:
        wait_for(lambda: health(port).get("ready"), 180, "the daemon to be ready", daemon.stderr)
        viewers = watch_streams(port, 6, stop)
        wait_for(lambda: sum(c["processed"] for c in health(port)["cameras"].values()) >= 40,
                 180, "40 frames under load", daemon.stderr)
        daemon.proc.send_signal(signal.SIGTERM)
        code = daemon.wait(90)
    finally:
        stop.set()
        daemon.kill()
    assert code == 0, daemon.stderr()
    stderr = daemon.stderr()
    assert "Traceback" not in stderr, stderr
    for viewer in viewers:
        viewer.join(10)
        assert not viewer.is_alive()  # the server closed the streams
    logged = log_lines(tmp_path / "events.jsonl")  # every line complete and valid JSON
    stats = daemon.stats()
    assert sum(c["events"] for c in stats["cameras"].values()) == len(logged)
    check_chains(logged, "event log", ended=True)  # the stop ended every open event
    records, torn = outbox_records(tmp_path / "outbox.jsonl")
    assert torn == 0
    pending = set(pending_ids(records))
    wait_for(lambda: {t for t in logged if message_key(t) not in pending}
             <= subscriber.payloads(), 60, "every event delivered or kept in the outbox")
    subscriber.close()
    broker.stop()
    report_figure("sigterm_under_load_events_logged", len(logged))
    report_figure("sigterm_under_load_events_left_in_outbox", len(pending))


def test_kill_9_at_random_moments(tmp_path: Path, demo_model: Path, demo_video) -> None:  # noqa: ANN001
    video, _ = demo_video(300, seed=10)
    port = free_port()
    config = daemon_config(
        demo_model, video,
        cameras=[{"name": "cam", "source": {"type": "opencv", "url": str(video),
                                            "realtime": False}}],
        outputs={"http": {"enabled": True, "port": port},
                 "journal": {"enabled": False},  # the legacy outbox path
                 "mqtt": {"enabled": True, "port": free_port(), "topic_prefix": PREFIX,
                          "outbox": {"path": "outbox.jsonl"}}},
        detect={"fps": 0}, motion={"enabled": False}, events=CHATTY)
    path = write_yaml(tmp_path / "c.yaml", config)
    rng = random.Random(11)
    torn_lines = 0
    for attempt in range(3):
        daemon = DaemonProcess(path, tmp_path, stats=False)
        try:
            wait_for(lambda: health(port).get("cameras", {}).get("cam", {}).get("events", 0)
                     >= 8, 180, "events", daemon.stderr)
            threading.Event().wait(rng.uniform(0.2, 2.0))
        finally:
            daemon.proc.send_signal(signal.SIGKILL)
            daemon.proc.wait(10)
        text = (tmp_path / "events.jsonl").read_text(encoding="utf-8")
        complete, _, tail = text.rpartition("\n")
        torn_lines += bool(tail)
        # The log as the next start reads it: its complete lines (a torn tail is cut).
        check_chains(complete.splitlines(), f"event log after kill {attempt + 1}")
        records, _ = outbox_records(tmp_path / "outbox.jsonl")
        adds = [r["payload"] for r in records if r["op"] == "add"]
        check_chains(adds, f"outbox after kill {attempt + 1}")
    adds_before = adds
    daemon = DaemonProcess(path, tmp_path)  # a last run repairs and goes on
    wait_for(lambda: health(port).get("cameras", {}).get("cam", {}).get("events", 0) >= 3, 180,
             "events after the restart", daemon.stderr)
    assert daemon.terminate() == 0, daemon.stderr()
    logged = log_lines(tmp_path / "events.jsonl")
    check_chains(logged, "event log after the last run")
    records, torn = outbox_records(tmp_path / "outbox.jsonl")
    assert torn == 0  # no broker: nothing was acknowledged, every message is still there
    adds = [r["payload"] for r in records if r["op"] == "add"]
    check_chains(adds, "outbox after the last run")
    # The last run stopped cleanly: its messages are in both files, in the same order.
    assert logged[len(complete.splitlines()):] == adds[len(adds_before):]
    report_figure("kill9_random_kills", 3)
    report_figure("kill9_torn_event_log_lines_repaired", torn_lines)
