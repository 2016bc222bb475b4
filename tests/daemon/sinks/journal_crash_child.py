"""Child process of the journal kill -9 test: a producer and two file outputs on one journal.

``python -m tests.daemon.sinks.journal_crash_child DIR produce`` appends messages until killed;
``... DIR drain`` appends nothing and exits once every output has caught up.
"""

from __future__ import annotations

import json
import random
import sys
import threading
import time
from pathlib import Path

from daemon.sinks.event_journal import Journal, JournalMessage
from daemon.sinks.journal_jsonl import JsonlDelivery
from daemon.sinks.jsonl import JsonlWriter


def outputs(folder: Path, journal: Journal) -> list[JsonlDelivery]:
    return [
        JsonlDelivery(journal.cursor("event_log"),
                      JsonlWriter(folder / "events.jsonl", 20_000, 10_000, "always")),
        JsonlDelivery(journal.cursor("mirror"),
                      JsonlWriter(folder / "mirror.jsonl", 1 << 62, 0, "never")),
    ]


def _deliver(output: JsonlDelivery, stop: threading.Event) -> None:
    while not stop.is_set():
        if not output.pump():
            output.cursor.wait(0.05)


def _produce(journal: Journal) -> None:
    rng = random.Random()
    while True:
        first = journal.last_seq() + 1
        numbers = range(first, first + rng.randrange(1, 6))
        pad = "x" * rng.randrange(80)
        batch = [JournalMessage(f"m{n}", "cam", json.dumps({"n": n, "pad": pad}))
                 for n in numbers]
        journal.append(batch)
        print(f"appended {batch[-1].key}", flush=True)
        time.sleep(rng.random() * 0.004)


def main(folder: Path, mode: str) -> None:
    journal = Journal(folder / "journal.db")
    journal.open()
    delivered = outputs(folder, journal)
    stop = threading.Event()
    threads = []
    for output in delivered:
        output.open()
        threads.append(threading.Thread(target=_deliver, args=(output, stop), daemon=True))
        threads[-1].start()
    if mode == "produce":
        _produce(journal)
    last = journal.last_seq()
    while any(output.cursor.acked < last for output in delivered):
        time.sleep(0.05)
    stop.set()
    for thread in threads:
        thread.join()
    for output in delivered:
        output.close()
    journal.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
