"""The daemon: capture -> bounded queues -> event stage -> model worker process -> sinks.

Each frame taken from a camera's queue first meets the event stage (:mod:`daemon.events`):
motion gating and ``detect.fps`` decide whether the model sees it. Skipped frames go straight
to the sinks (they may still end events); inferred ones come back with their prediction, which
the tracker turns into event messages. At most ``worker.pipeline_depth`` frames of a camera are
in flight at once, and :class:`~daemon.pipeline.ordering.InOrderDelivery` hands each camera's
frames to the event stage and the sinks one at a time, in capture order.

:class:`Pipeline` wires the stages together, runs until stopped (SIGTERM, ``q`` in the preview)
or until every finite source has ended, and shuts down in order: sources closed, queued frames
dropped, frames in flight finished, sinks drained and flushed.
"""

from __future__ import annotations

import logging
import resource
import sqlite3
import threading
import time
from pathlib import Path

from d2common.errors import D2StreamError, ModelError
from daemon.config.errors import ConfigError
from daemon.config.schema import DaemonConfig
from daemon.config.writable import create_folders
from daemon.events.lifecycle import EventBatch
from daemon.events.stage import CameraEvents, EventStage
from daemon.events.switches import DetectionSwitches
from daemon.inference.backends.base import RemoteOptions
from daemon.pipeline.frame_queue import FrameHub
from daemon.pipeline.journal_feed import JournalFeed
from daemon.pipeline.ordering import InOrderDelivery, Outcome
from daemon.pipeline.producer import Producer
from daemon.pipeline.supervisor import WorkerResult, WorkerSupervisor
from daemon.pipeline.worker import WorkerSpec
from daemon.service.monitor import ServiceMonitor
from daemon.service.notify import Notifier
from daemon.sinks import Sink, build_sinks
from daemon.sinks.event_journal import Journal
from daemon.sources import create_source
from daemon.structures.frame import Frame
from daemon.structures.metrics import Metrics, peak_rss_kb
from daemon.structures.results import FrameResult, ModelInfo
from daemon.zoo_cache import resolve_model

log = logging.getLogger(__name__)

TICK_S = 0.1


class Pipeline:
    """One daemon run. ``run()`` blocks; ``stop`` (an Event) ends it from any thread.

    ``extra_sinks`` are :class:`Sink` objects of your own (Python API): each gets every
    :class:`FrameResult` in its own thread, like the built-in outputs.
    """

    def __init__(self, config: DaemonConfig, notifier: Notifier | None = None,
                 stop: threading.Event | None = None,
                 extra_sinks: list[Sink] | None = None) -> None:
        self.config = config
        self.extra_sinks = list(extra_sinks or [])
        self.stop = stop or threading.Event()
        self.notifier = notifier or Notifier()
        self.hub = FrameHub(in_flight_per_camera=config.worker.pipeline_depth)
        self.ordering = InOrderDelivery(self._deliver_in_order)
        self.metrics = Metrics(self.hub.stats)
        self.switches = DetectionSwitches(c.name for c in config.enabled_cameras())
        self.switches.listen(self.metrics.set_detection)
        self.finished = threading.Event()
        self.model: ModelInfo | None = None
        self.stage: EventStage | None = None
        self.supervisor: WorkerSupervisor | None = None
        self.producers: list[Producer] = []
        self.sinks: list[Sink] = []
        self.journal: Journal | None = None
        self.feed: JournalFeed | None = None
        self._live_sinks: list[Sink] = []
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
        create_folders(self.config)  # an unwritable path: exit 78 naming its key
        self._start_sinks()  # first: a missing GUI or a taken port fails before the model loads
        cfg = self.config
        try:  # a zoo:NAME model is exported once, on first start, and cached
            model_path = resolve_model(cfg.model.path)
        except D2StreamError as exc:
            raise ConfigError(str(exc), key="model.path") from None
        spec = worker_spec(cfg, model_path)
        self.supervisor = WorkerSupervisor(spec, cfg.worker, self.metrics, self._on_result,
                                           next_frame=self._take, on_lost=self._on_lost)
        try:
            meta = self.supervisor.start()
        except ModelError as exc:
            raise ConfigError(str(exc), key="model.path") from None
        self.model = ModelInfo.from_metadata(meta)
        self.metrics.model_name = self.model.name
        self.stage = EventStage(cfg, self.model.class_names, self.model.name, self.metrics)
        counts = self.stage.counts()  # every tracked label at 0: replaces a crash's retained
        for sink in self.sinks:
            sink.model_loaded(self.model, counts)
        self._end_events_left_open()
        self._create_producers()
        for producer in self.producers:  # each opens its camera in its own thread
            producer.start()
        self._check_cameras_started()
        self._dispatcher.start()

    def _end_events_left_open(self) -> None:
        """End, on every output, the events the database knows a crash left open."""
        if not self.config.outputs.database.enabled:
            return
        from daemon.recordings.restart import left_open_results  # noqa: PLC0415

        for result in left_open_results(self.config.outputs.database.path, self.model):
            if self.journal is not None and result.events:  # the journal's outputs too
                self._journal_events(result)
            for sink in self.sinks:
                sink.offer(result)

    def _check_cameras_started(self) -> None:
        """Wait for every camera's first open attempt (or a stop). The daemon runs with the
        cameras that opened and keeps retrying the others.

        Raises:
            SourceError: a camera with ``on_start_failure: fail`` did not open.
            D2StreamError: no camera at all could be opened (exit 1: systemd tries again).
        """
        for producer in self.producers:
            producer.wait_started(self.stop)
        if self.stop.is_set():
            return
        failed = [p for p in self.producers if p.start_error is not None]
        for producer in failed:
            if producer.reopen.on_start_failure == "fail":
                raise producer.start_error
        if failed and len(failed) == len(self.producers):
            if len(failed) == 1:
                raise failed[0].start_error
            raise D2StreamError("no camera could be opened: "
                                + "; ".join(str(p.start_error) for p in failed))
        if failed:
            log.warning("running without %s until %s (retried every %s)",
                        ", ".join(repr(p.name) for p in failed),
                        "it opens" if len(failed) == 1 else "they open",
                        ", ".join(f"{p.reopen.probe_interval_s:g}s" for p in failed))

    def _start_sinks(self) -> None:
        for camera in self.config.enabled_cameras():
            self.metrics.add_camera(camera.name)
        for sink in self.extra_sinks:
            sink.metrics = sink.metrics or self.metrics
        section = self.config.outputs.journal
        if section.enabled:
            self.journal = Journal(section.path)
            try:
                self.journal.open()
            except (OSError, sqlite3.Error) as exc:
                raise ConfigError(f"cannot open {section.path}: {exc}",
                                  key="outputs.journal.path") from None
            self.feed = JournalFeed(self.journal, self.metrics)
        built = build_sinks(self.config, self.metrics, self.stop.set, self.switches,
                            self.journal)
        for sink in built + self.extra_sinks:
            sink.start()
            self.sinks.append(sink)  # only started sinks are stopped

    def _create_producers(self) -> None:
        assert self.model is not None
        min_max = (self.model.min_size_test, self.model.max_size_test)
        live = [sink for sink in self.sinks if getattr(sink, "live", False)]
        self._live_sinks = live
        for camera in self.config.enabled_cameras():
            source = create_source(camera, min_max)
            self.hub.add(camera.name, camera.queue_size, source.lossless)
            self.metrics.add_camera(camera.name)
            self.producers.append(Producer(source, camera.reopen, self.hub, self.metrics,
                                           self.stop, max_pixels=camera.max_pixels,
                                           on_frame=self._live_frame if live else None))

    # -- running -------------------------------------------------------------------------------
    def _live_frame(self, frame: Frame) -> None:
        """Every captured frame goes to the live view (capture thread), with the camera's
        tracked objects as of now, or its latest detections (``outputs.http.overlay``)."""
        assert self.stage is not None and self.model is not None
        camera = self.stage[frame.camera]
        now = time.monotonic()
        tracked = self.config.outputs.http.overlay == "tracked"
        result = FrameResult(frame, camera.display_prediction(frame), self.model, 0.0, now,
                             fps=self.metrics.camera_fps(frame.camera, now), inferred=False,
                             live=True, objects=camera.tracked_boxes(frame) if tracked else None)
        for sink in self._live_sinks:
            sink.offer(result)

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
            self.supervisor.submit_next(self._take)

    def _take(self) -> Frame | None:
        """The next frame for the model; frames the event stage keeps from it are delivered
        on the spot. Called with the supervisor's lock held (one caller at a time)."""
        assert self.stage is not None
        while True:
            frame = self.hub.take_nowait()
            if frame is None:
                return None
            if not self.switches.enabled(frame.camera):  # detection switched off
                self.ordering.skipped(frame)
                continue
            try:
                infer = self.stage[frame.camera].should_infer(frame)
            except Exception:  # a bug in the event stage must not stop the pipeline
                log.exception("camera %r frame %d: event stage failed", frame.camera, frame.seq)
                infer = True
            if not infer:
                self.ordering.skipped(frame)  # delivered after the frames before it
                continue
            self.hub.hold(frame.camera)
            self.ordering.expect(frame)
            return frame

    def _deliver_in_order(self, outcome: Outcome, frame: Frame, payload: object) -> None:
        """Event stage and sinks for one frame, called in each camera's capture order."""
        assert self.stage is not None and self.model is not None
        camera = self.stage[frame.camera]
        if outcome is Outcome.SKIPPED:
            self._deliver_skipped(camera, frame)
            return
        worker_result: WorkerResult = payload  # type: ignore[assignment]
        result = FrameResult(frame, worker_result.prediction, self.model,
                             worker_result.inference_s, worker_result.done_mono,
                             fps=self.metrics.camera_fps(frame.camera, worker_result.done_mono))
        self._deliver(result, camera.inferred(frame, worker_result.prediction))

    def _deliver_skipped(self, camera: CameraEvents, frame: Frame) -> None:
        assert self.model is not None
        now = time.monotonic()
        self.metrics.frame_skipped(frame.camera)
        batch = camera.skipped(frame)
        result = FrameResult(frame, camera.display_prediction(frame), self.model, 0.0, now,
                             fps=self.metrics.camera_fps(frame.camera, now), inferred=False)
        self._deliver(result, batch)

    def _deliver(self, result: FrameResult, batch: EventBatch) -> None:
        result.events, result.counts = batch.events, batch.counts
        result.snapshots = batch.snapshots
        if self.journal is not None and result.events:  # durable before any output sees it
            self._journal_events(result)
        for sink in self.sinks:
            sink.offer(result)

    def _journal_events(self, result: FrameResult) -> None:
        assert self.feed is not None
        self.feed.add(result.camera, result.events)

    def _on_result(self, worker_result: WorkerResult) -> None:
        frame, done = worker_result.frame, worker_result.done_mono
        # The camera's next frame goes to the worker first, then this result's events are
        # worked out while it infers: the worker never waits for the event stage.
        self.hub.release(frame.camera)
        if self.supervisor is not None and not self.stop.is_set():
            self.supervisor.submit_next(self._take)
        self.metrics.frame_processed(frame.camera, done - frame.t_mono,
                                     worker_result.inference_s, done)
        self.ordering.done(frame, Outcome.INFERRED, worker_result)

    def _on_lost(self, frame: Frame) -> None:
        try:
            self.ordering.done(frame, Outcome.LOST)  # later frames need not wait for it
        finally:
            self.hub.release(frame.camera)

    def _main_loop(self) -> None:
        monitor = ServiceMonitor(self.notifier, self.metrics, self.config.service.status_interval_s,
                                 self.config.service.watchdog)
        gui = [sink for sink in self.sinks if sink.main_thread]
        while not self.stop.is_set() and not self.finished.is_set():
            if not self.metrics.ready and self.metrics.progress()[0] > 0:
                self.metrics.set_ready()
            monitor.tick()
            if gui:
                for sink in gui:  # the preview window: GUI calls stay in this thread
                    sink.run_once(TICK_S / len(gui))
            else:
                self.stop.wait(TICK_S)
        if self.finished.is_set():
            log.info("every source has ended")

    # -- stop ----------------------------------------------------------------------------------
    def _shutdown(self) -> None:
        """Stop within ``service.stop_timeout_s`` in all: a capture thread stuck in a camera
        call (an open or a read waiting for a silent camera) is left behind after a short
        wait, since no frame of it is needed any more; the rest of the budget goes to the
        frames in flight and the sinks."""
        self.notifier.stopping()
        self.stop.set()
        self.hub.wake()
        budget = self.config.service.stop_timeout_s
        deadline = time.monotonic() + budget
        capture_deadline = time.monotonic() + min(1.0, 0.1 * budget)
        for producer in self.producers:
            producer.join(max(0.0, capture_deadline - time.monotonic()))
        stuck = [p.name for p in self.producers if p.is_alive()]
        if stuck:
            log.warning("camera(s) %s still in a capture call; not waiting for them",
                        ", ".join(repr(name) for name in stuck))
        dropped = self.hub.discard_all()
        if self._dispatcher.is_alive():
            self._dispatcher.join(_left(deadline, 0.6))
        if self.supervisor is not None:
            self.supervisor.stop(drain_timeout=_left(deadline, 0.5))
        self._close_events()
        for sink in self.sinks:
            sink.stop(_left(deadline, 0.8 / max(1, len(self.sinks))))
        if self.journal is not None:
            self.journal.close()
        self._record_peak_rss()
        self._log_summary(dropped)
        self.notifier.close()

    def _close_events(self) -> None:
        """End every open event (their end messages and snapshots reach the sinks)."""
        if self.stage is None or self.model is None:
            return
        for frame, batch in self.stage.close():
            if not batch:
                continue
            now = time.monotonic()
            result = FrameResult(frame, self.stage[frame.camera].display_prediction(frame),
                                 self.model, 0.0, now, inferred=False, closing=True)
            self._deliver(result, batch)

    def _record_peak_rss(self) -> None:
        own = peak_rss_kb() or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        self.peak_rss_kb = {"daemon": own, "worker": self.metrics.worker_peak_rss_kb}

    def _log_summary(self, dropped_at_stop: int) -> None:
        snap = self.metrics.snapshot()
        for name, cam in snap["cameras"].items():
            log.info("camera %r: %d frames read, %d inferred (%.2f fps), %d skipped by motion "
                     "gating or detect.fps, %d dropped, %d event messages", name, cam["captured"],
                     cam["processed"], cam["mean_fps"], cam["skipped"], cam["dropped"],
                     cam["events"])
        worker = snap["worker"]
        log.info("stopped: worker restarts %d, frames lost %d, queued frames dropped at stop %d, "
                 "uptime %.1fs", worker["restarts"], worker["frames_lost"], dropped_at_stop,
                 time.monotonic() - self.metrics.started_mono)


def _left(deadline: float, share: float) -> float:
    """``share`` of the seconds left until ``deadline`` (at least a little)."""
    return max(0.05, share * (deadline - time.monotonic()))


def worker_spec(config: DaemonConfig, model_path: Path) -> WorkerSpec:
    """What the worker process is started with, from the ``model`` section."""
    model = config.model
    return WorkerSpec(str(model_path), model.num_threads, model.min_score,
                      logging.getLogger().getEffectiveLevel(), backend=model.backend,
                      optimized_cache=_optional_str(model.optimized_cache),
                      spin_wait=model.spin_wait, remote=_remote_options(config))


def _remote_options(config: DaemonConfig) -> RemoteOptions | None:
    if config.model.backend != "remote":
        return None
    r = config.model.remote
    return RemoteOptions(r.url, r.model_name, r.model_version, r.timeout_s, r.retries,
                         r.backoff_s, r.token, r.fallback)


def _optional_str(path: object) -> str | None:
    return None if path is None else str(path)
