"""In-order delivery of each camera's frames while several are in flight."""

from __future__ import annotations

import threading

import numpy as np

from daemon.pipeline.ordering import InOrderDelivery, Outcome
from daemon.structures.frame import Frame


def frame(camera: str, seq: int) -> Frame:
    return Frame(camera, seq, float(seq), float(seq), np.zeros((2, 2, 3), np.uint8))


class Log:
    def __init__(self, fail_on: int | None = None) -> None:
        self.items: list[tuple[str, int, str]] = []
        self.fail_on = fail_on

    def __call__(self, outcome: Outcome, f: Frame, payload: object) -> None:
        if f.seq == self.fail_on:
            raise RuntimeError("sink bug")
        self.items.append((f.camera, f.seq, outcome.value))


def test_a_skipped_frame_waits_for_the_inference_before_it() -> None:
    log = Log()
    line = InOrderDelivery(log)
    a, b, c = frame("cam", 0), frame("cam", 1), frame("cam", 2)
    line.expect(a)
    line.skipped(b)
    line.expect(c)
    assert log.items == [] and line.waiting("cam") == 3
    line.done(c, Outcome.INFERRED, "c")  # out of order: held back
    assert log.items == []
    line.done(a, Outcome.INFERRED, "a")
    assert log.items == [("cam", 0, "inferred"), ("cam", 1, "skipped"), ("cam", 2, "inferred")]
    assert line.waiting("cam") == 0


def test_without_a_frame_in_flight_a_skipped_frame_goes_at_once() -> None:
    log = Log()
    line = InOrderDelivery(log)
    line.skipped(frame("cam", 0))
    assert log.items == [("cam", 0, "skipped")]


def test_a_lost_frame_is_not_delivered_and_does_not_block_the_line() -> None:
    log = Log()
    line = InOrderDelivery(log)
    a, b = frame("cam", 0), frame("cam", 1)
    line.expect(a)
    line.skipped(b)
    line.done(a, Outcome.LOST)
    assert log.items == [("cam", 1, "skipped")]


def test_cameras_do_not_wait_for_each_other() -> None:
    log = Log()
    line = InOrderDelivery(log)
    line.expect(frame("door", 0))
    line.skipped(frame("yard", 0))
    assert log.items == [("yard", 0, "skipped")]


def test_a_failing_delivery_is_logged_and_the_line_goes_on(caplog) -> None:  # noqa: ANN001
    log = Log(fail_on=0)
    line = InOrderDelivery(log)
    a, b = frame("cam", 0), frame("cam", 1)
    line.expect(a)
    line.skipped(b)
    line.done(a, Outcome.INFERRED)
    assert log.items == [("cam", 1, "skipped")]
    assert "delivery failed" in caplog.text


def test_an_unexpected_result_is_ignored() -> None:
    log = Log()
    line = InOrderDelivery(log)
    line.done(frame("cam", 5), Outcome.INFERRED)
    assert log.items == [] and line.waiting("cam") == 0


def test_deliveries_from_two_threads_stay_in_order() -> None:
    log = Log()
    line = InOrderDelivery(log)
    frames = [frame("cam", i) for i in range(400)]
    inferred = frames[::2]
    for f in frames:
        if f in inferred:
            line.expect(f)
        else:
            line.skipped(f)
    halves = [inferred[0::2], inferred[1::2]]
    threads = [threading.Thread(target=lambda fs=fs: [line.done(f, Outcome.INFERRED)
                                                      for f in fs]) for fs in halves]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [seq for _, seq, _ in log.items] == list(range(400))
