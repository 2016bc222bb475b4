"""The daemon: capture -> bounded queues -> model worker process -> sinks.

:class:`Pipeline` wires the stages together, runs until stopped (SIGTERM, ``q`` in the preview)
or until every finite source has ended, and shuts down in order: sources closed, queued frames
dropped, frames in flight finished, sinks drained and flushed.
"""

from __future__ import annotations

import logging
import resource
import threading
import time

from daemon.config.errors import ConfigError
from daemon.config.schema import DaemonConfig
from daemon.errors import D2StreamError, ModelError
from daemon.pipeline.events import EventEmitter, new_run_id
from daemon.pipeline.frame_queue import FrameHub
from daemon.pipeline.metrics import Metrics, peak_rss_kb
from daemon.pipeline.results import FrameResult, ModelInfo
from daemon.pipeline.supervisor import WorkerResult, WorkerSupervisor
from daemon.pipeline.worker import WorkerSpec
from daemon.service.monitor import ServiceMonitor
from daemon.service.notify import Notifier
from daemon.sinks import Sink, build_sinks
from daemon.sources import create_source
from daemon.sources.producer import Producer
from daemon.zoo_cache import resolve_model

log = logging.getLogger(__name__)

TICK_S = 0.1


class Pipeline:
    """One daemon run. ``run()`` blocks; ``stop`` (an Event) ends it from any thread."""

    def __init__(self, config: DaemonConfig, notifier: Notifier | None = None,
                 stop: threading.Event | None = None) -> None:
        self.config = config
        self.stop = stop or threading.Event()
        self.notifier = notifier or Notifier()
        self.hub = FrameHub()
        self.metrics = Metrics(self.hub.stats)
        self.finished = threading.Event()
        self.model: ModelInfo | None = None
        self.emitter: EventEmitter | None = None
        self.supervisor: WorkerSupervisor | None = None
        self.producers: list[Producer] = []
        self.sinks: list[Sink] = []
        self._dispatcher = threading.Thread(target=self._dispatch_loop, name="dispatch",
                                            daemon=True)
        self.peak_rss_kb: dict[str, int] = {}

    def run(self) -> int:
        """Start everything, run until stopped or finished, shut down; returns exit status 0.

        Raises:
            ConfigError: the model, labels or an output cannot be used as configured.
            D2StreamError: a camera cannot be opened at start (``on_start_failure: fail``) or
                the worker cannot start.
        """
        try:
            self._start()
            self._main_loop()
        finally:
            self._shutdown()
        return 0

    # -- start ---------------------------------------------------------------------------------
    def _start(self) -> None:
        cfg = self.config
        try:  # a zoo:NAME model is exported once, on first start, and cached
            model_path = resolve_model(cfg.model.path)
        except D2StreamError as exc:
            raise ConfigError(str(exc), key="model.path") from None
        spec = WorkerSpec(str(model_path), cfg.model.num_threads, cfg.model.min_score,
                          logging.getLogger().getEffectiveLevel())
        self.supervisor = WorkerSupervisor(spec, cfg.worker, self.metrics, self._on_result,
                                           next_frame=self.hub.take_nowait)
        try:
            meta = self.supervisor.start()
        except ModelError as exc:
            raise ConfigError(str(exc), key="model.path") from None
        self.model = ModelInfo.from_metadata(meta)
        self.metrics.model_name = self.model.name
        self.emitter = EventEmitter(cfg.events, self.model.class_names, self.model.name,
                                    run_id=new_run_id())
        self._create_producers()
        for producer in self.producers:
            producer.open_initial()
        self.sinks = build_sinks(cfg, self.metrics, self.stop.set)
        for sink in self.sinks:
            sink.start()
        for producer in self.producers:
            producer.start()
        self._dispatcher.start()

    def _create_producers(self) -> None:
        assert self.model is not None
        min_max = (self.model.min_size_test, self.model.max_size_test)
        for camera in self.config.enabled_cameras():
            source = create_source(camera, min_max)
            self.hub.add(camera.name, camera.queue_size, source.lossless)
            self.metrics.add_camera(camera.name)
            self.producers.append(Producer(source, camera.reopen, self.hub, self.metrics,
                                           self.stop, max_pixels=camera.max_pixels))

    # -- running -------------------------------------------------------------------------------
    def _dispatch_loop(self) -> None:
        assert self.supervisor is not None
        while not self.stop.is_set():
            if not self.supervisor.wait_slot(self.stop, timeout=0.2):
                continue
            if not self.hub.wait_frame(timeout=0.2):
                if self.hub.all_finished() and self.supervisor.idle():
                    self.finished.set()
                    return
                continue
            self.supervisor.submit_next(self.hub.take_nowait)

    def _on_result(self, worker_result: WorkerResult) -> None:
        assert self.emitter is not None and self.model is not None
        frame, done = worker_result.frame, worker_result.done_mono
        self.metrics.frame_processed(frame.camera, done - frame.t_mono,
                                     worker_result.inference_s, done)
        result = FrameResult(frame, worker_result.prediction, self.model,
                             worker_result.inference_s, done,
                             fps=self.metrics.camera_fps(frame.camera, done))
        result.events = self.emitter.events_for(frame, worker_result.prediction, done)
        if result.events:
            self.metrics.events_emitted(frame.camera, len(result.events))
        for sink in self.sinks:
            sink.offer(result)

    def _main_loop(self) -> None:
        monitor = ServiceMonitor(self.notifier, self.metrics, self.config.service.status_interval_s,
                                 self.config.service.watchdog)
        while not self.stop.is_set() and not self.finished.is_set():
            if not self.metrics.ready and self.metrics.progress()[0] > 0:
                self.metrics.set_ready()
            monitor.tick()
            self.stop.wait(TICK_S)
        if self.finished.is_set():
            log.info("every source has ended")

    # -- stop ----------------------------------------------------------------------------------
    def _shutdown(self) -> None:
        self.notifier.stopping()
        self.stop.set()
        self.hub.wake()
        timeout = self.config.service.stop_timeout_s
        for producer in self.producers:
            producer.join(timeout)
        dropped = self.hub.discard_all()
        if self._dispatcher.is_alive():
            self._dispatcher.join(timeout)
        if self.supervisor is not None:
            self.supervisor.stop(drain_timeout=timeout)
        for sink in self.sinks:
            sink.stop(timeout)
        self._record_peak_rss()
        self._log_summary(dropped)
        self.notifier.close()

    def _record_peak_rss(self) -> None:
        own = peak_rss_kb() or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        self.peak_rss_kb = {"daemon": own, "worker": self.metrics.worker_peak_rss_kb}

    def _log_summary(self, dropped_at_stop: int) -> None:
        snap = self.metrics.snapshot()
        for name, cam in snap["cameras"].items():
            log.info("camera %r: %d frames read, %d inferred (%.2f fps), %d dropped, %d events",
                     name, cam["captured"], cam["processed"], cam["mean_fps"], cam["dropped"],
                     cam["events"])
        worker = snap["worker"]
        log.info("stopped: worker restarts %d, frames lost %d, queued frames dropped at stop %d, "
                 "uptime %.1fs", worker["restarts"], worker["frames_lost"], dropped_at_stop,
                 time.monotonic() - self.metrics.started_mono)
