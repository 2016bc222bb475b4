"""MQTT event delivery from the journal, exactly once (QoS 2 with persisted packet ids).

Events go over a connection of their own (``mqtt_wire``: client id ``<client_id>-events``,
persistent session); availability, counts, discovery and commands stay on paho's connection.
One delivery round takes the next ``inflight`` journal entries after the ``mqtt`` cursor:

1. their packet ids (``seq % 65535 + 1``) are stored in the journal, phase ``publish``;
2. each is sent as a QoS 2 PUBLISH; once every PUBREC is in, the phase becomes ``released``;
3. PUBREL for each; once every PUBCOMP is in, the rows go and the cursor moves (one
   transaction).

After a crash (or a lost connection) the round resumes from the stored phase: ``publish`` rows
are sent again with the same packet id and DUP set (the broker, holding the session's QoS 2
state for that id, does not deliver it twice; one it never got it delivers once), ``released``
rows get their PUBREL only, never the PUBLISH again. A subscriber with QoS 2 therefore receives
exactly the journal's messages, in order.
"""

from __future__ import annotations

import logging
import sqlite3
import time

from daemon.config.schema import MqttOutput, SnapshotOutput
from daemon.events.switches import DetectionSwitches
from daemon.sinks.base import EventsOnly
from daemon.sinks.event_journal import Entry, Journal, register_consumer
from daemon.sinks.mqtt import CLOSE_TIMEOUT_S, UNREACHABLE_AFTER_S, MqttSink, event_topic
from daemon.sinks.mqtt_wire import (
    PUBCOMP,
    PUBREC,
    Connection,
    WireError,
    publish_packet,
    pubrel_packet,
)
from daemon.sinks.outbox import Outbox
from daemon.structures.metrics import Metrics
from daemon.structures.results import FrameResult

log = logging.getLogger(__name__)

PUBLISH, RELEASED = "publish", "released"
#: longest time the sink thread spends delivering before it looks at counts and commands
ROUNDS_BUDGET_S = 1.0


def packet_id(seq: int) -> int:
    return seq % 65535 + 1


class ExactlyOnce:
    """Delivers the journal's entries after cursor ``name`` to the broker, exactly once."""

    def __init__(self, config: MqttOutput, journal: Journal, name: str = "mqtt") -> None:
        self.config = config
        self.journal = journal
        self.name = name
        self.cursor = journal.cursor(name)
        self.client_id = f"{config.client_id}-events"
        self.conn = Connection(config.host, config.port, config.tls,
                               timeout_s=float(min(10, config.keepalive_s)))
        self.connected = False
        self.error: str | None = None
        self.delivered = 0
        self._delay = config.reconnect_min_s
        self._next_attempt = 0.0

    def pump(self) -> int:
        """Deliver for up to ``ROUNDS_BUDGET_S``; returns how many messages completed."""
        if not self._ensure_connected():
            return 0
        done, start = 0, time.monotonic()
        try:
            while time.monotonic() - start < ROUNDS_BUDGET_S:
                count = self._round()
                done += count
                if not count:
                    break
            if not done and time.monotonic() - self.conn.last_sent > self.config.keepalive_s / 2:
                self.conn.ping()
        except WireError as exc:
            self._lost(str(exc))
        except sqlite3.Error as exc:  # the journal's disk: retried at the next pump
            self.error = f"journal: {exc}"
            log.warning("MQTT: cannot record delivery state in the journal (%s); retrying", exc)
        return done

    def pending(self) -> int:
        return max(0, self.journal.last_seq() - self.cursor.acked)

    def close(self) -> None:
        deadline = time.monotonic() + CLOSE_TIMEOUT_S
        while self.connected and self.pending() and time.monotonic() < deadline:
            if not self.pump():
                break
        if self.pending():
            log.warning("MQTT: %d journaled message(s) not delivered at stop; delivered at the "
                        "next start", self.pending())
        self.conn.close(polite=True)
        self.connected = False

    # -- internals -----------------------------------------------------------------------------
    def _ensure_connected(self) -> bool:
        if self.connected:
            return True
        if time.monotonic() < self._next_attempt:
            return False
        cfg = self.config
        try:
            present = self.conn.open(self.client_id, cfg.keepalive_s, cfg.username,
                                     cfg.password)
        except WireError as exc:
            self._lost(str(exc))
            return False
        self.connected, self.error, self._delay = True, None, cfg.reconnect_min_s
        if not present and self.journal.inflight(self.name):
            log.warning("MQTT: the broker lost the session of %s; messages in flight are "
                        "completed anew", self.client_id)
        log.info("MQTT: event connection %s to %s:%d", self.client_id, cfg.host, cfg.port)
        return True

    def _lost(self, why: str) -> None:
        if self.connected or self.error is None:
            log.warning("MQTT: event connection: %s; retrying in %.0fs", why, self._delay)
        self.conn.close()
        self.connected, self.error = False, why
        self._next_attempt = time.monotonic() + self._delay
        self._delay = min(self.config.reconnect_max_s, self._delay * 2)

    def _round(self) -> int:
        rows = self.journal.inflight(self.name)
        resumed = bool(rows)
        if resumed:
            entries = self.journal.read_after(self.cursor.acked, len(rows))
        else:
            entries = self.journal.read_after(self.cursor.acked, self.config.inflight)
            if not entries:
                return 0
            rows = [(e.seq, packet_id(e.seq), PUBLISH) for e in entries]
            self.journal.set_inflight(self.name, [(s, p) for s, p, _ in rows], PUBLISH)
        by_seq = {e.seq: e for e in entries}
        to_publish = [(s, p) for s, p, phase in rows if phase == PUBLISH]
        for seq, pid in to_publish:
            self.conn.send(self._publish(by_seq[seq], pid, dup=resumed))
        self._await(PUBREC, {pid for _, pid in to_publish})
        if to_publish:
            self.journal.set_inflight(self.name, to_publish, RELEASED)
        for _, pid, _ in rows:
            self.conn.send(pubrel_packet(pid))
        self._await(PUBCOMP, {pid for _, pid, _ in rows})
        last = rows[-1][0]
        self.journal.complete(self.name, last)
        self.cursor.moved(last)
        self.delivered += len(rows)
        return len(rows)

    def _publish(self, entry: Entry, pid: int, dup: bool) -> bytes:
        topic = event_topic(self.config.topic_prefix, entry.camera)
        return publish_packet(topic, entry.payload.encode("utf-8"), pid, dup)

    def _await(self, kind: int, ids: set[int]) -> None:
        """Read packets until one of ``kind`` arrived for every packet id in ``ids``."""
        waiting = set(ids)
        while waiting:
            got, _, body = self.conn.read(self.conn.timeout_s)
            if got == kind and len(body) >= 2:
                waiting.discard(int.from_bytes(body[:2], "big"))


@register_consumer("mqtt")
class JournalMqttSink(MqttSink):
    """MQTT as a journal consumer: events exactly once from the ``mqtt`` cursor
    (:class:`ExactlyOnce`); paho's connection carries availability, counts, commands,
    discovery and snapshots."""

    def __init__(self, config: MqttOutput, journal: Journal, metrics: Metrics,
                 switches: DetectionSwitches | None = None,
                 snapshots: SnapshotOutput | None = None) -> None:
        # the queue carries object counts (and, with snapshots, ended events' frames) only
        super().__init__(config, 16, metrics, switches=switches, snapshots=snapshots)
        self.outbox = Outbox(None, config.outbox.max_bytes)  # stays empty: the journal holds
        self.journal = journal
        self.events = ExactlyOnce(config, journal, self.name)

    def wants(self, result: FrameResult) -> bool:
        return result.counts is not None or (self.publish_snapshots and bool(result.snapshots))

    def keep(self, result: FrameResult) -> EventsOnly:
        kept = super().keep(result)
        return EventsOnly(kept.camera, [], kept.counts, kept.snapshots)

    def _pump(self) -> None:
        super()._pump()
        self.events.pump()

    def _report(self) -> None:
        for key, value in self.outbox.view().items():
            self.metrics.faults.sink_set(self.name, key, value)
        events = getattr(self, "events", None)
        if events is None:
            return
        self.metrics.faults.sink_set(self.name, "journal_pending", events.pending())
        self.metrics.faults.sink_set(self.name, "delivered", events.delivered)
        late = time.monotonic() - self._opened_mono > UNREACHABLE_AFTER_S
        if events.error is not None and (late or events.delivered):
            self.report_failure(f"broker {self.config.host}:{self.config.port}: "
                                f"{events.error}; {events.pending()} event(s) wait in the "
                                "journal")
        elif events.connected:
            self.report_working()

    def close(self) -> None:
        self.events.close()
        super().close()
