"""Soak: a couple of minutes with every output on, viewers coming and going and a camera that
keeps dropping out; resident memory, file descriptors and threads must not grow beyond noise.

``D2STREAM_SOAK_S`` lengthens the measured part (default 60 s after a 30 s warm-up); the long
run is ``benchmarks/soak_bench.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.daemon.reliability.fault_helpers import report_figure
from tests.daemon.reliability.soak import run_soak

MEASURED_S = float(os.environ.get("D2STREAM_SOAK_S", "60"))
WARMUP_S = 30.0
#: Growth allowed over the measured part: allocator noise, not a leak (a leak of one frame per
#: second would be megabytes per minute).
RSS_NOISE_KB = 8 * 1024
FD_NOISE = 2
THREAD_NOISE = 4


def test_soak_resources_stay_flat(tmp_path: Path, demo_model: Path, demo_video) -> None:  # noqa: ANN001
    video, _ = demo_video(40, seed=14)
    result = run_soak(tmp_path, demo_model, video, MEASURED_S, WARMUP_S)
    summary = result.summary()
    assert summary["samples"] >= 6, summary
    assert len({s.worker_pid for s in result.measured()}) == 1  # the worker never died
    assert summary["daemon_rss_growth_kb"] < RSS_NOISE_KB, summary
    assert not result.worker_memory_leaks(RSS_NOISE_KB), summary  # arena steps left out
    assert summary["daemon_fd_growth"] <= FD_NOISE and summary["worker_fd_growth"] <= FD_NOISE, \
        summary
    assert summary["daemon_thread_growth"] <= THREAD_NOISE, summary
    stats = result.stats
    assert stats["worker"]["restarts"] == 0
    assert stats["faults"]["cameras"]["door"]["outages"] >= 2  # the flapping camera came back
    assert summary["events_received"] > 0 and stats["faults"]["sinks"]["mqtt"]["ok"]
    for key, value in summary.items():
        report_figure(f"soak_{key}", value)
