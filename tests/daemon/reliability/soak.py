"""The soak scenario shared by the CI soak test and ``benchmarks/soak_bench.py``.

One daemon runs with everything on: a looping real-time video camera and a network camera that
is unplugged every ``flap_every_s`` seconds (reopen cycles), the event log rotating quickly,
snapshots pruned, MQTT through the outbox to a real broker, the live view with viewers coming
and going and ``/healthz`` and ``/metrics`` polled. Every ``sample_every_s`` the resident memory,
open file descriptors and threads of the daemon and of its worker are sampled from /proc.

Growth is the median of the last three samples minus the median of the first three after the
warm-up (medians: one sample taken while a viewer thread is alive must not count as a leak).

The worker's resident memory also rises in a few large steps that are not leaks: ONNX Runtime's
CPU arena grows (and keeps the memory) the first time a frame gives more detections than any
before, so its peak comes with the busiest scene, which on a slow machine can come after the
warm-up (measured: +12.5 MB and +14.7 MB at frames ~50 and ~150, then +0.3 MB over six minutes).
:meth:`SoakResult.steps` finds those rises and :meth:`SoakResult.growth_between_steps` is the
growth without them; a leak grows between them (every sample a little) or steps again and again.
"""

from __future__ import annotations

import statistics
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.daemon.daemon_helpers import (
    DaemonProcess,
    daemon_config,
    free_port,
    looping_camera,
    subprocess_env,
    write_yaml,
)
from tests.daemon.reliability.fault_helpers import (
    Broker,
    FlakyCamera,
    PersistentSubscriber,
    health,
    wait_for,
)

#: A rise of the worker's memory this large between two samples is an arena extension, not
#: creep (a leak of a frame per second rises ~0.5 MB between samples taken 2 s apart).
ARENA_STEP_KB = 2048
#: Arena extensions the worker may still make after the warm-up (its busiest scene yet): a leak
#: that comes in steps steps more often than this.
ARENA_STEPS = 3


@dataclass
class Sample:
    t: float
    daemon_rss_kb: int
    daemon_fds: int
    daemon_threads: int
    worker_rss_kb: int
    worker_fds: int
    worker_pid: int
    processed: int


@dataclass
class SoakResult:
    samples: list[Sample] = field(default_factory=list)
    warmup_s: float = 0.0
    stats: dict[str, Any] = field(default_factory=dict)
    events_received: int = 0

    def measured(self) -> list[Sample]:
        return [s for s in self.samples if s.t >= self.warmup_s]

    def _values(self, name: str) -> list[int]:
        values = [getattr(s, name) for s in self.measured()]
        if len(values) < 6:
            raise ValueError(f"only {len(values)} samples after the warm-up")
        return values

    def growth(self, name: str) -> float:
        values = self._values(name)
        return statistics.median(values[-3:]) - statistics.median(values[:3])

    def steps(self, name: str, min_kb: int) -> list[int]:
        """Rises of at least ``min_kb`` between consecutive measured samples of ``name``."""
        values = self._values(name)
        return [b - a for a, b in zip(values, values[1:]) if b - a >= min_kb]

    def growth_between_steps(self, name: str, min_kb: int) -> int:
        """Last minus first measured sample of ``name``, the :meth:`steps` left out."""
        values = self._values(name)
        return values[-1] - values[0] - sum(self.steps(name, min_kb))

    def worker_memory_leaks(self, noise_kb: int) -> bool:
        """The worker's memory stepped more than :data:`ARENA_STEPS` times after the warm-up,
        or grew by ``noise_kb`` or more between its steps."""
        steps = self.steps("worker_rss_kb", ARENA_STEP_KB)
        creep = self.growth_between_steps("worker_rss_kb", ARENA_STEP_KB)
        return len(steps) > ARENA_STEPS or creep >= noise_kb

    def summary(self) -> dict[str, Any]:
        measured = self.measured()
        span = measured[-1].t - measured[0].t if measured else 0.0
        fps = (measured[-1].processed - measured[0].processed) / span if span else 0.0
        return {
            "measured_s": round(span, 1), "samples": len(measured),
            "daemon_rss_growth_kb": self.growth("daemon_rss_kb"),
            "worker_rss_growth_kb": self.growth("worker_rss_kb"),
            "worker_rss_steps_kb": self.steps("worker_rss_kb", ARENA_STEP_KB),
            "worker_rss_growth_between_steps_kb":
                self.growth_between_steps("worker_rss_kb", ARENA_STEP_KB),
            "daemon_fd_growth": self.growth("daemon_fds"),
            "worker_fd_growth": self.growth("worker_fds"),
            "daemon_thread_growth": self.growth("daemon_threads"),
            "daemon_rss_kb": measured[-1].daemon_rss_kb,
            "worker_rss_kb": measured[-1].worker_rss_kb,
            "fps": round(fps, 2), "events_received": self.events_received,
        }


def _status(pid: int) -> dict[str, int]:
    values = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "Threads"):
                values[key] = int(rest.split()[0])
    values["fds"] = len(list(Path(f"/proc/{pid}/fd").iterdir()))
    return values


def _visitor(port: int, stop: threading.Event) -> None:
    """Viewers coming and going, status pages polled."""
    paths = ["/stream/cam.mjpg", "/healthz", "/metrics", "/snapshot/door.jpg", "/"]
    i = 0
    while not stop.is_set():
        path = paths[i % len(paths)]
        i += 1
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
                r.read(300_000 if path.endswith(".mjpg") else -1)
        except OSError:
            pass
        stop.wait(0.2)


def _flapper(camera: FlakyCamera, every_s: float, stop: threading.Event) -> None:
    while not stop.wait(every_s):
        camera.unplug()
        if stop.wait(1.0):
            break
        camera.plug()


def run_soak(workdir: Path, model: Path, video: Path, duration_s: float, warmup_s: float,
             sample_every_s: float = 2.0, flap_every_s: float = 10.0) -> SoakResult:
    """Run the scenario for ``warmup_s + duration_s`` seconds; samples and final stats."""
    broker = Broker.create(workdir / "broker")
    broker.start()
    subscriber = PersistentSubscriber(broker.port, "soak", "soak-sub")
    camera = FlakyCamera(fps=5)
    camera.plug()
    port = free_port()
    config = daemon_config(
        model, video,
        cameras=[looping_camera(video),
                 {"name": "door", "source": {"type": "opencv", "url": camera.url,
                                             "open_timeout_s": 3, "read_timeout_s": 3},
                  "reopen": {"initial_delay_s": 0.2, "max_delay_s": 1}}],
        outputs={"http": {"enabled": True, "port": port, "max_fps": 5},
                 "event_log": {"max_bytes": 200_000, "backups": 2, "fsync": "interval"},
                 "snapshots": {"enabled": True, "dir": "snapshots", "max_files": 20},
                 "mqtt": {"enabled": True, "port": broker.port, "topic_prefix": "soak",
                          "outbox": {"path": "outbox.jsonl", "max_bytes": 1_000_000}}})
    # The environment of systemd/d2stream.service (MALLOC_ARENA_MAX=2: bounded malloc arenas).
    env = subprocess_env({"MALLOC_ARENA_MAX": "2"})
    daemon = DaemonProcess(write_yaml(workdir / "soak.yaml", config), workdir, env=env)
    stop = threading.Event()
    result = SoakResult(warmup_s=warmup_s)
    try:
        wait_for(lambda: health(port).get("status") == "ok", 180, "the soak daemon",
                 daemon.stderr)
        helpers = [threading.Thread(target=_visitor, args=(port, stop), daemon=True)
                   for _ in range(2)]
        helpers.append(threading.Thread(target=_flapper, args=(camera, flap_every_s, stop),
                                        daemon=True))
        for thread in helpers:
            thread.start()
        start = time.monotonic()
        while (elapsed := time.monotonic() - start) < warmup_s + duration_s:
            result.samples.append(_sample(daemon.pid, port, elapsed))
            stop.wait(sample_every_s)
        stop.set()
        for thread in helpers:
            thread.join(15)
    finally:
        stop.set()
        code = daemon.terminate()
        camera.unplug()
        result.events_received = len(subscriber.payloads())
        subscriber.close()
        broker.stop()
    if code != 0:
        raise AssertionError(f"the soak daemon exited with {code}:\n{daemon.stderr()[-3000:]}")
    result.stats = daemon.stats()
    return result


def _sample(pid: int, port: int, elapsed: float) -> Sample:
    status = health(port)
    worker_pid = int(status.get("worker", {}).get("pid") or 0)
    own = _status(pid)
    worker = _status(worker_pid) if worker_pid else {"VmRSS": 0, "fds": 0}
    processed = sum(c["processed"] for c in status.get("cameras", {}).values())
    return Sample(elapsed, own["VmRSS"], own["fds"], own["Threads"], worker["VmRSS"],
                  worker["fds"], worker_pid, processed)
