"""Prometheus text exposition (format 0.0.4) and health of a :meth:`Metrics.snapshot`."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
STALE_FRAME_S = 10.0

# (metric, type, help, per-camera snapshot key)
_CAMERA_SERIES = (
    ("d2stream_frames_captured_total", "counter", "Frames read from the camera.", "captured"),
    ("d2stream_frames_processed_total", "counter", "Frames inferred by the model.", "processed"),
    ("d2stream_frames_dropped_total", "counter",
     "Frames dropped because the model was busy (oldest first).", "dropped"),
    ("d2stream_events_total", "counter", "Event messages emitted (start, update, end).",
     "events"),
    ("d2stream_inferences_skipped_total", "counter",
     "Frames kept from the model by motion gating or the detect.fps cap.", "skipped"),
    ("d2stream_motion_frames_total", "counter", "Frames in which motion was detected.",
     "motion_frames"),
    ("d2stream_motion_score", "gauge", "Moving fraction of the last frame checked (0..1).",
     "motion_score"),
    ("d2stream_source_reopens_total", "counter", "Times the camera was reopened.", "reopens"),
    ("d2stream_queue_depth", "gauge", "Frames waiting in the camera's queue.", "queue_depth"),
    ("d2stream_capture_fps", "gauge", "Frames read per second (5 s window).", "capture_fps"),
    ("d2stream_fps", "gauge", "Frames inferred per second (5 s window).", "fps"),
    ("d2stream_camera_connected", "gauge", "1 while the camera delivers frames.", "connected"),
    ("d2stream_detection_enabled", "gauge",
     "1 while the model runs for the camera (0: switched off by an MQTT command).", "detection"),
)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _fmt(value: Any) -> str:
    if value is None:
        return "NaN"
    value = float(value)
    if math.isnan(value):
        return "NaN"
    return repr(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


def _series(name: str, kind: str, text: str,
            samples: Iterable[tuple[Mapping[str, str], Any]]) -> list[str]:
    lines = [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
    for labels, value in samples:
        label_text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
        lines.append(f"{name}{{{label_text}}} {_fmt(value)}" if label_text
                     else f"{name} {_fmt(value)}")
    return lines


def render(snapshot: Mapping[str, Any]) -> str:
    """All metrics of a snapshot as Prometheus text."""
    cameras: Mapping[str, Mapping[str, Any]] = snapshot["cameras"]
    worker: Mapping[str, Any] = snapshot["worker"]
    lines: list[str] = []
    for name, kind, text, key in _CAMERA_SERIES:
        lines += _series(name, kind, text,
                         (({"camera": cam}, values[key]) for cam, values in cameras.items()))
    lines += _series("d2stream_objects", "gauge", "Objects with an open event, per label.",
                     [({"camera": cam, "label": label}, n) for cam, values in cameras.items()
                      for label, n in values.get("objects", {}).items()])
    lines += _series("d2stream_latency_seconds", "summary",
                     "Capture-to-result latency (recent frames).",
                     [({"camera": cam, "quantile": q}, values[f"latency_{k}_s"])
                      for cam, values in cameras.items() for q, k in (("0.5", "p50"),
                                                                      ("0.95", "p95"))])
    lines += _series("d2stream_inference_seconds", "summary", "Model time per frame.",
                     [({"quantile": "0.5"}, worker["inference_p50_s"]),
                      ({"quantile": "0.95"}, worker["inference_p95_s"])])
    lines += _series("d2stream_worker_restarts_total", "counter",
                     "Times the model worker process was restarted.", [({}, worker["restarts"])])
    lines += _series("d2stream_frames_lost_total", "counter",
                     "Frames lost to worker deaths or failed inferences.",
                     [({}, worker["frames_lost"])])
    lines += _series("d2stream_worker_up", "gauge", "1 while the worker process is alive.",
                     [({}, int(bool(worker["alive"])))])
    remote: Mapping[str, int] = snapshot.get("remote") or {}
    for key, text in (("requests", "Requests sent to the remote inference server."),
                      ("retries", "Remote inference requests retried."),
                      ("failures", "Frames the remote server could not answer."),
                      ("fallbacks", "Frames inferred by the local fallback model.")):
        if key in remote:
            lines += _series(f"d2stream_remote_{key}_total", "counter", text,
                             [({}, remote[key])])
    lines += _series("d2stream_sink_dropped_total", "counter",
                     "Items a slow sink dropped from its queue.",
                     [({"sink": s}, n) for s, n in snapshot["sinks_dropped"].items()])
    lines += _series("d2stream_ready", "gauge", "1 once the model is loaded and a frame read.",
                     [({}, int(bool(snapshot["ready"])))])
    lines += _series("d2stream_uptime_seconds", "gauge", "Seconds since start.",
                     [({}, snapshot["uptime_s"])])
    if "faults" in snapshot:
        lines += _fault_lines(snapshot["faults"])
    return "\n".join(lines) + "\n"


def _fault_lines(faults: Mapping[str, Any]) -> list[str]:
    """Series of :class:`~daemon.structures.faults.FaultStats` (outputs, outages, refusals)."""
    sinks: Mapping[str, Mapping[str, Any]] = faults["sinks"]
    cameras: Mapping[str, Mapping[str, Any]] = faults["cameras"]
    lines = _series("d2stream_sink_up", "gauge", "1 while the output works (0: disk full...).",
                    [({"sink": s}, int(bool(v["ok"]))) for s, v in sinks.items()])
    lines += _series("d2stream_sink_failures_total", "counter", "Times the output started failing.",
                     [({"sink": s}, v["failures"]) for s, v in sinks.items()])
    lines += _series("d2stream_sink_stat", "gauge",
                     "Output counters and levels (backlog, write errors, outbox).",
                     [({"sink": s, "stat": k}, value) for s, v in sinks.items()
                      for k, value in v.items() if k not in _SINK_VIEW_KEYS])
    lines += _series("d2stream_camera_outages_total", "counter", "Times the camera was lost.",
                     [({"camera": c}, v["outages"]) for c, v in cameras.items()])
    lines += _series("d2stream_camera_recovery_seconds", "gauge",
                     "Last camera outage, lost until frames flow again.",
                     [({"camera": c}, v["last_recovery_s"]) for c, v in cameras.items()])
    lines += _series("d2stream_frames_rejected_total", "counter",
                     "Unusable frames refused (corrupt, too large, wrong format).",
                     [({"camera": c}, v["frames_rejected"]) for c, v in cameras.items()])
    lines += _series("d2stream_worker_restart_seconds", "gauge",
                     "Last worker restart, death noticed until the new worker is ready.",
                     [({}, faults["worker"]["last_restart_s"])])
    lines += _series("d2stream_http_rejected_total", "counter",
                     "Live-view requests refused (auth, clients, connections).",
                     [({"reason": r}, n) for r, n in faults["http"]["rejected"].items()])
    return lines


_SINK_VIEW_KEYS = ("ok", "error", "failing_for_s", "failures")


def health(snapshot: Mapping[str, Any]) -> str:
    """``ok``, ``starting`` (not ready yet) or ``degraded`` (worker down, an output failing, a
    camera lost or silent for more than ``STALE_FRAME_S``)."""
    if not snapshot["ready"]:
        return "starting"
    if not snapshot["worker"]["alive"]:
        return "degraded"
    sinks = snapshot.get("faults", {}).get("sinks", {})
    if any(not values["ok"] for values in sinks.values()):
        return "degraded"
    for values in snapshot["cameras"].values():
        if values["finished"]:
            continue
        age = values["last_frame_age_s"]
        if not values["connected"] or age is None or age > STALE_FRAME_S:
            return "degraded"
    return "ok"
