"""The remote backend's counters in the metrics snapshot (/healthz) and the Prometheus text."""

from __future__ import annotations

from daemon.sinks import prometheus
from daemon.structures.metrics import Metrics


def test_remote_counters_are_reported_only_with_a_remote_backend() -> None:
    metrics = Metrics()
    assert metrics.snapshot()["remote"] is None
    assert "d2stream_remote" not in prometheus.render(metrics.snapshot())
    metrics.remote_stats({"requests": 7, "retries": 3, "failures": 1, "fallbacks": 1})
    assert metrics.snapshot()["remote"]["retries"] == 3
    text = prometheus.render(metrics.snapshot())
    assert "d2stream_remote_requests_total 7" in text
    assert "d2stream_remote_retries_total 3" in text
    assert "d2stream_remote_fallbacks_total 1" in text
