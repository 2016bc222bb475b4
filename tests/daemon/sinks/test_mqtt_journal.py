"""Exactly-once MQTT delivery from the journal (QoS 2, persisted packet ids) on a real
mosquitto: a connection cut at each phase of the exchange never duplicates nor loses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from daemon.config.schema import MqttOutput
from daemon.sinks.event_journal import Journal, JournalMessage
from daemon.sinks.mqtt_journal import PUBLISH, RELEASED, ExactlyOnce, packet_id
from daemon.sinks.mqtt_wire import PUBCOMP, PUBREC, publish_packet, pubrel_packet
from tests.daemon.daemon_helpers import wait_until
from tests.daemon.reliability.fault_helpers import Broker, PersistentSubscriber

PREFIX = "xo"


@pytest.fixture
def broker(tmp_path: Path):  # noqa: ANN201
    broker = Broker.create(tmp_path / "broker")
    broker.start()
    yield broker
    broker.stop()


def _journal(tmp_path: Path, count: int) -> tuple[Journal, list[str]]:
    journal = Journal(tmp_path / "journal.db")
    journal.open()
    payloads = [json.dumps({"n": n}) for n in range(count)]
    journal.append(JournalMessage(f"k{n}", "cam", p) for n, p in enumerate(payloads))
    return journal, payloads


def _config(broker: Broker, inflight: int = 4) -> MqttOutput:
    return MqttOutput(enabled=True, port=broker.port, topic_prefix=PREFIX, inflight=inflight,
                      client_id="xo-test", reconnect_min_s=0.1, reconnect_max_s=0.2)


def _drain(publisher: ExactlyOnce) -> None:
    assert wait_until(lambda: publisher.pump() >= 0 and publisher.pending() == 0, 60), \
        publisher.error


def test_every_entry_once_in_order(tmp_path: Path, broker: Broker) -> None:
    subscriber = PersistentSubscriber(broker.port, PREFIX, "xo-sub-1", qos=2)
    journal, payloads = _journal(tmp_path, 25)
    publisher = ExactlyOnce(_config(broker), journal)
    try:
        _drain(publisher)
        assert wait_until(lambda: len(subscriber.received()) >= 25, 30)
        assert subscriber.received() == payloads
        assert journal.inflight("mqtt") == []
        assert journal.position("mqtt") == journal.last_seq()
    finally:
        publisher.close()
        subscriber.close()


@pytest.mark.parametrize("cut", ["before_publish", "after_pubrec", "after_pubrel",
                                 "after_pubcomp"])
def test_a_cut_at_any_phase_neither_duplicates_nor_loses(
        tmp_path: Path, broker: Broker, cut: str) -> None:
    """A process that died mid-exchange (its state only in the journal) is replaced by a new
    one, which completes the exchange from the stored phase."""
    subscriber = PersistentSubscriber(broker.port, PREFIX, f"xo-sub-{cut}", qos=2)
    journal, payloads = _journal(tmp_path, 6)
    first = ExactlyOnce(_config(broker), journal)
    try:
        assert first._ensure_connected()
        entries = journal.read_after(0, 4)
        rows = [(e.seq, packet_id(e.seq)) for e in entries]
        journal.set_inflight("mqtt", rows, PUBLISH)
        if cut != "before_publish":
            for entry, (_, pid) in zip(entries, rows, strict=True):
                first.conn.send(publish_packet(f"{PREFIX}/cam/events", entry.payload.encode(),
                                               pid, dup=False))
            first._await(PUBREC, {pid for _, pid in rows})
        if cut in ("after_pubrel", "after_pubcomp"):
            journal.set_inflight("mqtt", rows, RELEASED)
            for _, pid in rows:
                first.conn.send(pubrel_packet(pid))
            if cut == "after_pubcomp":
                first._await(PUBCOMP, {pid for _, pid in rows})
        first.conn.close()  # as kill -9 does: no DISCONNECT, state only in the journal
        again = Journal(journal.path)
        again.open()
        second = ExactlyOnce(_config(broker), again)
        _drain(second)
        assert wait_until(lambda: len(subscriber.received()) >= 6, 30)
        assert not wait_until(lambda: len(subscriber.received()) > 6, 1.5)  # no late repeat
        assert subscriber.received() == payloads
        assert again.inflight("mqtt") == []
        second.close()
    finally:
        subscriber.close()


def test_a_broker_away_holds_messages_in_the_journal(tmp_path: Path, broker: Broker) -> None:
    subscriber = PersistentSubscriber(broker.port, PREFIX, "xo-sub-away", qos=2)
    journal, payloads = _journal(tmp_path, 5)
    publisher = ExactlyOnce(_config(broker), journal)
    try:
        _drain(publisher)
        broker.stop()
        journal.append([JournalMessage("late", "cam", '{"n":"late"}')])
        publisher.pump()
        assert not publisher.connected and publisher.pending() == 1
        assert publisher.error
        broker.start()
        _drain(publisher)
        assert wait_until(lambda: len(subscriber.received()) >= 6, 30)
        assert subscriber.received() == [*payloads, '{"n":"late"}']
    finally:
        publisher.close()
        subscriber.close()
