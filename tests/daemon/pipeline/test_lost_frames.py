"""Frames lost with a worker are reported to ``on_lost`` (the pipeline releases their camera)."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

from daemon.config.schema import WorkerSection
from daemon.demo.synthetic import ShapeScene
from daemon.pipeline.supervisor import WorkerSupervisor
from daemon.pipeline.worker import WorkerSpec
from daemon.structures.frame import Frame
from daemon.structures.metrics import Metrics
from tests.daemon.daemon_helpers import wait_until


def test_a_frame_lost_in_a_hung_worker_is_reported(demo_model: Path) -> None:
    metrics = Metrics()
    metrics.add_camera("cam")
    lost: list[Frame] = []
    results: list = []
    supervisor = WorkerSupervisor(WorkerSpec(str(demo_model), 1, 0.3),
                                  WorkerSection(restart_delay_s=0.1, inference_timeout_s=1.0),
                                  metrics, results.append, on_lost=lost.append)
    supervisor.start()
    try:
        os.kill(metrics.worker_pid, signal.SIGSTOP)  # it will never answer
        frame = Frame.now("cam", 7, ShapeScene(seed=1).render()[0])
        assert supervisor.wait_slot(threading.Event(), timeout=60)
        assert supervisor.submit(frame)
        assert wait_until(lambda: lost and metrics.worker_alive and metrics.worker_restarts, 120)
        assert lost == [frame] and not results and metrics.frames_lost == 1
    finally:
        supervisor.stop(drain_timeout=10)
