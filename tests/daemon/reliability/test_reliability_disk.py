"""The disk fills up under a running daemon, then space returns.

The fault is a real one, portable and unprivileged: the daemon's file-size limit
(``RLIMIT_FSIZE``, changed on the running process with ``prlimit``) makes every write past a few
kilobytes fail with ``EFBIG``, half-written when it crosses the limit: the event log, the
MQTT outbox journal and the snapshots all fail as on a full disk. Detection and MQTT must go
on, ``/healthz`` must report the failure, and when the limit is lifted ("space returns") every
output resumes, the event log complete (its waiting events written first) and never torn.
"""

from __future__ import annotations

import resource
from pathlib import Path

from tests.daemon.daemon_helpers import daemon_config, free_port, looping_camera, write_yaml
from tests.daemon.reliability.fault_helpers import (
    Broker,
    PersistentSubscriber,
    PipedDaemon,
    check_chains,
    health,
    log_lines,
    now,
    report_figure,
    wait_for,
)

FULL_S = 5.0
PREFIX = "disk"


def sinks(port: int) -> dict:
    return health(port).get("faults", {}).get("sinks", {})


def test_disk_full_then_space_returns(tmp_path: Path, demo_model: Path, demo_video) -> None:  # noqa: ANN001
    video, _ = demo_video(30, seed=13, size=(640, 480))
    broker = Broker.create(tmp_path / "broker")
    broker.start()
    subscriber = PersistentSubscriber(broker.port, PREFIX, "disk-sub")
    port = free_port()
    config = daemon_config(
        demo_model, video,
        cameras=[looping_camera(video)],
        outputs={"http": {"enabled": True, "port": port},
                 "snapshots": {"enabled": True, "dir": "snapshots", "jpeg_quality": 100},
                 "journal": {"enabled": False},  # the legacy outbox path
                 "mqtt": {"enabled": True, "port": broker.port, "topic_prefix": PREFIX,
                          "outbox": {"path": "outbox.jsonl"}}},
        # Events end soon after their object vanishes (the video loops every 3 s): snapshots,
        # written when an event ends, keep coming.
        events={"end_after_s": 0.5, "update_interval_s": 0.2, "update_box_iou": 0.95})
    daemon = PipedDaemon(write_yaml(tmp_path / "c.yaml", config), tmp_path)
    log = tmp_path / "events.jsonl"
    try:
        wait_for(lambda: log.exists() and log.stat().st_size > 0, 180, "the first events",
                 daemon.stderr)
        limit = max(log.stat().st_size, (tmp_path / "outbox.jsonl").stat().st_size) + 3000
        resource.prlimit(daemon.pid, resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
        full = now()
        failing = wait_for(lambda: (s := sinks(port)) and not s.get("event_log", {}).get(
            "ok", True) and not s.get("snapshots", {}).get("ok", True)
            and not s.get("mqtt", {}).get("outbox_journal_ok", 1) and s, 120,
            "the failures in /healthz", daemon.stderr)
        assert "File too large" in failing["event_log"]["error"]
        assert health(port)["status"] == "degraded"
        during = health(port)
        delivered = len(subscriber.payloads())
        wait_for(lambda: now() - full >= FULL_S, FULL_S + 1, "the disk-full period")
        after = health(port)
        # detection and MQTT went on while nothing could be written
        assert after["cameras"]["cam"]["processed"] > during["cameras"]["cam"]["processed"]
        wait_for(lambda: len(subscriber.payloads()) > delivered + 3, 60,
                 "MQTT deliveries while the disk is full", daemon.stderr)
        backlog = sinks(port)["event_log"]["backlog"]
        assert backlog > 0
        resource.prlimit(daemon.pid, resource.RLIMIT_FSIZE,
                         (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        freed = now()
        wait_for(lambda: (s := sinks(port)) and all(v["ok"] for v in s.values())
                 and s["event_log"]["backlog"] == 0 and s["mqtt"]["outbox_journal_ok"] == 1,
                 120, "every output working again", daemon.stderr)
        resumed_s = now() - freed
        snapshots_before = len(list((tmp_path / "snapshots" / "cam").glob("*.jpg")))
        wait_for(lambda: len(list((tmp_path / "snapshots" / "cam").glob("*.jpg")))
                 > snapshots_before, 60, "new snapshots", daemon.stderr)
    finally:
        code = daemon.terminate()
    assert code == 0, daemon.stderr()
    stderr = daemon.stderr()
    assert "Traceback" not in stderr, stderr[-3000:]
    assert stderr.count("event_log: cannot write") == 1  # reported once, not per event
    assert "event_log: working again after" in stderr and "snapshots: working again" in stderr
    logged = log_lines(log)  # every line complete: no torn line
    check_chains(logged, "event log", ended=True)  # none missing, although the disk was full
    stats = daemon.stats()
    assert stats["cameras"]["cam"]["events"] == len(logged)  # none lost from the log either
    assert stats["faults"]["sinks"]["event_log"].get("backlog_dropped", 0) == 0
    assert not list((tmp_path / "snapshots").rglob("*.tmp"))
    wait_for(lambda: set(logged) <= subscriber.payloads(), 60,
             "every event at the MQTT subscriber")
    subscriber.close()
    broker.stop()
    report_figure("disk_full_s", FULL_S)
    report_figure("disk_full_events_waiting_in_memory", backlog)
    report_figure("disk_full_event_log_lines_lost", 0)
    report_figure("disk_full_outputs_resumed_after_s", round(resumed_s, 2))
