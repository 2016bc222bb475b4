"""MQTT broker stopped mid-run and started again; the daemon killed with SIGKILL while the
broker is away: every event message the daemon accepted reaches a subscriber, in order, none
lost.

A real mosquitto (persistent sessions) on a loopback port, a subscriber with a persistent
session, and ``d2stream run`` on a looping real-time video of moving shapes (events start,
update every 0.2 s while their object moves, and end).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.daemon.daemon_helpers import (
    DaemonProcess,
    daemon_config,
    free_port,
    looping_camera,
    wait_until,
    write_yaml,
)
from tests.daemon.reliability.fault_helpers import (
    Broker,
    PersistentSubscriber,
    check_chains,
    health,
    log_lines,
    message_key,
    now,
    outbox_records,
    pending_ids,
    report_figure,
    wait_for,
)

OUTAGE_S = 6.0
PREFIX = "relia"


@pytest.fixture()
def broker(tmp_path: Path) -> Iterator[Broker]:
    broker = Broker.create(tmp_path / "broker")
    broker.start()
    yield broker
    broker.stop()


def live_config(demo_model: Path, video: Path, broker: Broker, http_port: int) -> dict[str, Any]:
    return daemon_config(
        demo_model, video,
        cameras=[looping_camera(video)],
        outputs={"http": {"enabled": True, "port": http_port},
                 "journal": {"enabled": False},  # the legacy outbox path
                 "mqtt": {"enabled": True, "port": broker.port, "topic_prefix": PREFIX,
                          "reconnect_min_s": 1, "reconnect_max_s": 2,
                          "outbox": {"path": "outbox.jsonl"}}},
        events={"update_interval_s": 0.2, "update_box_iou": 0.95},
        service={"status_interval_s": 1})


def mqtt_view(port: int) -> dict[str, Any]:
    return health(port).get("faults", {}).get("sinks", {}).get("mqtt", {})


def test_broker_outage_loses_no_event(tmp_path: Path, demo_model: Path, demo_video,  # noqa: ANN001
                                      broker: Broker) -> None:
    video, _ = demo_video(30, seed=7)
    port = free_port()
    subscriber = PersistentSubscriber(broker.port, PREFIX, "relia-outage")
    daemon = DaemonProcess(write_yaml(tmp_path / "c.yaml", live_config(demo_model, video,
                                                                       broker, port)), tmp_path)
    try:
        wait_for(lambda: len(subscriber.payloads()) >= 5, 120, "events over MQTT",
                 daemon.stderr)
        broker.stop()
        stopped = now()
        down = wait_for(lambda: (v := mqtt_view(port)) and not v.get("ok", True)
                        and v.get("outbox_pending", 0) > 0 and v, 60,
                        "the outage in /healthz", daemon.stderr)
        assert "unreachable" in down["error"]
        assert health(port)["status"] == "degraded"
        wait_for(lambda: now() - stopped >= OUTAGE_S, OUTAGE_S + 1, "the outage")
        backlog = mqtt_view(port)["outbox_pending"]
        broker.start()
        started = now()
        drained = wait_for(lambda: (v := mqtt_view(port)) and v.get("ok")
                           and v["outbox_pending"] == 0 and v, 120,
                           "the outbox to drain after the broker came back", daemon.stderr)
        recovery_s = now() - started
        wait_for(lambda: mqtt_view(port).get("outbox_acked", 0) > drained["outbox_acked"] + 3,
                 60, "events after the recovery", daemon.stderr)
    finally:
        code = daemon.terminate()
    assert code == 0, daemon.stderr()
    logged = log_lines(tmp_path / "events.jsonl")
    check_chains(logged, "event log", ended=True)  # SIGTERM ends every open event
    wanted = set(logged)
    if not wait_until(lambda: wanted <= subscriber.payloads(), 60):
        missing = [message_key(t) for t in wanted - subscriber.payloads()]
        still = pending_ids(outbox_records(tmp_path / "outbox.jsonl")[0])
        pytest.fail(f"{len(missing)} message(s) never received: {missing[:5]}; pending in the "
                    f"outbox: {still[:5]}\n{daemon.stderr()[-3000:]}")
    received = subscriber.received()
    subscriber.close()
    first_seen = list(dict.fromkeys(received))
    order = {text: i for i, text in enumerate(logged)}
    in_log = [order[t] for t in first_seen if t in order]
    assert in_log == sorted(in_log), "messages were not delivered in order"
    stats = daemon.stats()
    assert stats["cameras"]["cam"]["events"] == len(logged)
    assert stats["faults"]["sinks"]["mqtt"]["outbox_dropped"] == 0
    lost = len(wanted - subscriber.payloads())
    assert lost == 0 and backlog > 0
    report_figure("mqtt_outage_s", round(OUTAGE_S, 1))
    report_figure("mqtt_events_accepted_during_outage", backlog)
    report_figure("mqtt_events_lost", lost)
    report_figure("mqtt_duplicates_received", len(received) - len(first_seen))
    report_figure("mqtt_recovery_to_empty_outbox_s", round(recovery_s, 2))


def test_kill_9_with_the_broker_away_then_restart_delivers_the_outbox(
        tmp_path: Path, demo_model: Path, demo_video, broker: Broker) -> None:  # noqa: ANN001
    video, _ = demo_video(30, seed=8)
    port = free_port()
    subscriber = PersistentSubscriber(broker.port, PREFIX, "relia-kill")
    broker.stop()
    config = write_yaml(tmp_path / "c.yaml", live_config(demo_model, video, broker, port))
    first = DaemonProcess(config, tmp_path)
    try:
        wait_for(lambda: mqtt_view(port).get("outbox_pending", 0) >= 15, 180,
                 "events piling up in the outbox", first.stderr)
        worker = health(port)["worker"]["pid"]
    finally:
        first.proc.send_signal(signal.SIGKILL)  # a power cut, as far as the process can tell
        first.proc.wait(10)
    wait_for(lambda: not os.path.exists(f"/proc/{worker}"), 30, "the orphaned worker to exit")
    records, torn = outbox_records(tmp_path / "outbox.jsonl")
    accepted = set(pending_ids(records))
    assert accepted and torn < 4096
    check_chains([r["payload"] for r in records if r["op"] == "add"], "outbox after kill -9")
    broker.start()
    second = DaemonProcess(config, tmp_path, stats=True)
    try:
        wait_for(lambda: accepted <= {message_key(t) for t in subscriber.payloads()}, 180,
                 "the events accepted before the kill at the subscriber", second.stderr)
    finally:
        code = second.terminate()
    assert code == 0, second.stderr()
    assert "message(s) from before the restart to deliver" in second.stderr()
    lost = len(accepted - {message_key(t) for t in subscriber.payloads()})
    subscriber.close()
    logged = log_lines(tmp_path / "events.jsonl")  # both runs, complete lines only
    assert len(set(logged)) == len(logged)
    assert lost == 0
    report_figure("kill9_outbox_events_replayed", len(accepted))
    report_figure("kill9_outbox_events_lost", lost)
