"""Bounded per-camera queues: live cameras drop the oldest frame, lossless sources wait."""

from __future__ import annotations

import threading

import numpy as np

from daemon.pipeline.frame_queue import FrameHub
from daemon.structures.frame import Frame

IMAGE = np.zeros((4, 4, 3), np.uint8)


def frame(camera: str, seq: int) -> Frame:
    return Frame(camera, seq, float(seq), float(seq), IMAGE)


def test_live_queue_drops_oldest_when_full_and_consumer_gets_newest() -> None:
    hub = FrameHub()
    hub.add("cam", maxsize=2, lossless=False)
    for seq in range(5):
        assert hub.put(frame("cam", seq))
    assert hub.stats()["cam"] == (2, 3)  # frames 0..2 dropped by the producer side
    taken = hub.take()
    assert taken is not None and taken.seq == 4  # the newest, never an older one
    assert hub.stats()["cam"] == (0, 4)  # frame 3 was older than the one taken: dropped
    assert hub.take(timeout=0.01) is None


def test_lossless_queue_blocks_producer_and_keeps_order() -> None:
    hub = FrameHub()
    hub.add("file", maxsize=2, lossless=True)
    stop = threading.Event()
    produced: list[int] = []

    def produce() -> None:
        for seq in range(6):
            if hub.put(frame("file", seq), stop):
                produced.append(seq)

    thread = threading.Thread(target=produce)
    thread.start()
    taken = []
    while len(taken) < 6:
        item = hub.take(timeout=1.0)
        assert item is not None, "producer stalled"
        taken.append(item.seq)
    thread.join(5)
    assert taken == list(range(6)) and produced == list(range(6))
    assert hub.stats()["file"] == (0, 0)


def test_lossless_put_gives_up_on_stop() -> None:
    hub = FrameHub()
    hub.add("file", maxsize=1, lossless=True)
    stop = threading.Event()
    assert hub.put(frame("file", 0), stop)
    stop.set()
    assert hub.put(frame("file", 1), stop) is False
    assert hub.stats()["file"] == (1, 0)


def test_cameras_are_served_in_turn() -> None:
    hub = FrameHub()
    hub.add("a", maxsize=4, lossless=True)
    hub.add("b", maxsize=4, lossless=True)
    for seq in range(3):
        hub.put(frame("a", seq))
        hub.put(frame("b", seq))
    order = [(f.camera, f.seq) for f in iter(lambda: hub.take(timeout=0.01), None)]
    assert order == [("a", 0), ("b", 0), ("a", 1), ("b", 1), ("a", 2), ("b", 2)]


def test_take_waits_for_a_frame_from_another_thread() -> None:
    hub = FrameHub()
    hub.add("cam", maxsize=1, lossless=False)
    timer = threading.Timer(0.05, lambda: hub.put(frame("cam", 7)))
    timer.start()
    got = hub.take(timeout=5.0)
    timer.join()
    assert got is not None and got.seq == 7


def test_finish_and_discard() -> None:
    hub = FrameHub()
    hub.add("a", maxsize=3, lossless=False)
    hub.add("b", maxsize=3, lossless=True)
    hub.put(frame("a", 0))
    hub.put(frame("b", 0))
    hub.finish("a")
    hub.finish("b")
    assert not hub.all_finished()  # frames are still queued
    assert hub.discard_all() == 2
    assert hub.all_finished()
    assert hub.stats() == {"a": (0, 1), "b": (0, 1)}


def test_a_held_camera_hands_out_nothing_until_released() -> None:
    hub = FrameHub()
    hub.add("a", maxsize=4, lossless=True)
    hub.add("b", maxsize=4, lossless=True)
    for seq in range(2):
        hub.put(frame("a", seq))
    hub.hold("a")
    assert hub.take_nowait() is None and not hub.wait_frame(timeout=0.01)
    hub.put(frame("b", 0))
    taken = hub.take_nowait()
    assert taken is not None and taken.camera == "b"  # other cameras go on
    woke = threading.Event()

    def consumer() -> None:
        if hub.wait_frame(timeout=10):
            woke.set()

    waiter = threading.Thread(target=consumer)
    waiter.start()
    hub.release("a")  # wakes the waiting consumer
    waiter.join(10)
    assert woke.is_set()
    taken = hub.take_nowait()
    assert taken is not None and (taken.camera, taken.seq) == ("a", 0)


def test_a_camera_gets_up_to_its_in_flight_limit() -> None:
    hub = FrameHub(in_flight_per_camera=2)
    hub.add("cam", 5, lossless=True)
    for i in range(4):
        hub.put(frame("cam", i))
    taken = []
    while (f := hub.take_nowait()) is not None:
        hub.hold("cam")
        taken.append(f.seq)
    assert taken == [0, 1]  # two in flight: the third waits
    hub.release("cam")
    assert hub.wait_frame(0.01)
    assert hub.take_nowait().seq == 2
