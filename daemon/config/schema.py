"""The daemon's YAML schema: pydantic v2 models, unknown keys rejected everywhere.

Relative paths are resolved against the directory of the config file (passed to validation as
``context={"base_dir": Path}``); files that must exist at start (the model, a video file, an
image folder) are checked here so that ``d2stream check-config`` catches them.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Union
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from d2common.zoo_names import is_zoo_reference
from daemon.config.events_schema import (
    CameraEventSettings,
    DetectSection,
    EventsSection,
    MotionSection,
    TrackingSection,
    ZoneName,
    ZoneSection,
    overlay,
)
from daemon.config.mqtt_schema import MqttOutput, OutboxSection  # noqa: F401 - re-exported
from daemon.config.path_types import CachePath, StatePath, resolve_path
from daemon.config.record_schema import RecordSection, check_recordings

#: URL schemes handed to OpenCV/FFmpeg as network streams.
STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp", "srt")
_DEVICE_RE = re.compile(r"^/dev/video\d+$")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _resolve(value: Path | str, info: ValidationInfo) -> Path:
    """Absolute path of ``value``, relative paths taken from the config file's directory."""
    return resolve_path(value, info)


def _section() -> Any:
    """A sub-section that may be omitted: its defaults are validated like written values (so
    that default relative paths are resolved against the config file's directory too)."""
    return Field(default_factory=dict, validate_default=True)


class RemoteSection(_Section):
    """``model.remote``: the Open Inference Protocol server of ``backend: remote``."""

    url: str = Field(default="http://127.0.0.1:8000", pattern=r"^https?://[^\s/]+")
    protocol: Literal["http"] = "http"
    model_name: str = Field(default="model", min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    model_version: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]+$")
    timeout_s: float = Field(default=10.0, gt=0)
    retries: int = Field(default=2, ge=0, le=10)
    backoff_s: float = Field(default=0.2, ge=0)
    token: str | None = None
    fallback: Literal["drop", "local"] = "drop"


class ModelSection(_Section):
    path: Path
    num_threads: int | None = Field(default=None, ge=1, le=256)
    min_score: float = Field(default=0.5, ge=0.0, le=1.0)
    # inference engine: auto (default: the fastest installed local engine, measured at the first
    # start and cached), or force onnxruntime or openvino (pip install 'd2stream[openvino]'), or
    # remote: an Open Inference Protocol server (docs/scaling-out.md); auto never picks remote
    backend: Literal["auto", "onnxruntime", "openvino", "remote"] = "auto"
    # backend remote: the Open Inference Protocol server (docs/scaling-out.md)
    remote: RemoteSection = _section()
    # onnxruntime: folder caching the optimised graph for a faster start (None: no cache);
    # auto caches its choice there too
    optimized_cache: CachePath | None = None
    # onnxruntime: inference threads busy-wait for work instead of sleeping (faster; off saves
    # power and heat on a shared or passively cooled machine; docs/performance.md)
    spin_wait: bool = True

    @field_validator("path")
    @classmethod
    def _model_exists(cls, value: Path, info: ValidationInfo) -> Path:
        if is_zoo_reference(value):  # zoo:NAME, exported on first start (daemon.zoo_cache)
            return Path(str(value).strip())
        path = _resolve(value, info)
        if (info.context or {}).get("check_files", True) and not path.is_file():
            raise ValueError(f"model file not found: {path}")
        return path


class WorkerSection(_Section):
    start_timeout_s: float = Field(default=120.0, gt=0)
    inference_timeout_s: float = Field(default=30.0, gt=0)
    restart_delay_s: float = Field(default=1.0, ge=0)
    restart_delay_max_s: float = Field(default=30.0, ge=0)
    pipeline_depth: int = Field(default=1, ge=1, le=4)


class ReopenSection(_Section):
    initial_delay_s: float = Field(default=1.0, ge=0)
    max_delay_s: float = Field(default=30.0, ge=0)
    multiplier: float = Field(default=2.0, ge=1.0)
    max_attempts: int = Field(default=0, ge=0)
    on_start_failure: Literal["fail", "retry"] = "retry"
    probe_interval_s: float = Field(default=1.0, gt=0, le=5.0)


class OpenCVSourceConfig(_Section):
    type: Literal["opencv"]
    url: str | int
    width: int | None = Field(default=None, gt=0)
    height: int | None = Field(default=None, gt=0)
    fps: float | None = Field(default=None, gt=0)
    loop: bool = False
    realtime: bool = True
    backend: Literal["auto", "ffmpeg", "v4l2", "gstreamer"] = "auto"
    open_timeout_s: float = Field(default=10.0, gt=0)
    read_timeout_s: float = Field(default=10.0, gt=0)

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str | int, info: ValidationInfo) -> str | int:
        return normalize_capture_url(value, info)

    def kind(self) -> Literal["device", "stream", "file"]:
        """What ``url`` names: a capture device, a network stream or a video file."""
        if isinstance(self.url, int) or _DEVICE_RE.match(self.url):
            return "device"
        return "stream" if "://" in self.url else "file"


def normalize_capture_url(value: str | int, info: ValidationInfo) -> str | int:
    """A device index, ``/dev/videoN``, a stream URL or an existing video file (made absolute)."""
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"a device index is 0 or more, got {value}")
        return value
    text = value.strip()
    if not text:
        raise ValueError("empty camera URL")
    if text.isdigit():
        return int(text)
    if _DEVICE_RE.match(text):
        return text
    if "://" in text:
        parts = urlsplit(text)
        if parts.scheme.lower() not in STREAM_SCHEMES:
            raise ValueError(
                f"unsupported stream scheme {parts.scheme!r} (expected one of "
                f"{', '.join(STREAM_SCHEMES)})"
            )
        if not parts.hostname:
            raise ValueError(f"stream URL has no host: {text!r}")
        return text
    if text.startswith("/dev/"):
        raise ValueError(f"not a V4L2 capture device (expected /dev/videoN): {text!r}")
    path = _resolve(text, info)
    if (info.context or {}).get("check_files", True) and not path.is_file():
        raise ValueError(f"video file not found: {path}")
    return str(path)


class PiCameraSourceConfig(_Section):
    type: Literal["picamera2"]
    camera_num: int = Field(default=0, ge=0)
    main_size: tuple[Annotated[int, Field(gt=0)], Annotated[int, Field(gt=0)]] = (1280, 720)
    lores_size: tuple[Annotated[int, Field(gt=0)], Annotated[int, Field(gt=0)]] | None = None
    fps: float | None = Field(default=None, gt=0)
    buffer_count: int = Field(default=4, ge=2, le=16)
    stall_timeout_s: float = Field(default=5.0, gt=0)


class FolderSourceConfig(_Section):
    type: Literal["folder"]
    path: Path
    patterns: list[str] = Field(default_factory=lambda: ["*.jpg", "*.jpeg", "*.png", "*.bmp"])
    fps: float = Field(default=0.0, ge=0)
    loop: bool = False

    @field_validator("path")
    @classmethod
    def _folder_exists(cls, value: Path, info: ValidationInfo) -> Path:
        path = _resolve(value, info)
        if (info.context or {}).get("check_files", True) and not path.is_dir():
            raise ValueError(f"image folder not found: {path}")
        return path


SourceSection = Annotated[
    Union[OpenCVSourceConfig, PiCameraSourceConfig, FolderSourceConfig],  # noqa: UP007 - discriminated union
    Field(discriminator="type"),
]


class CameraSection(_Section):
    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    enabled: bool = True
    source: SourceSection
    queue_size: int = Field(default=2, ge=1, le=64)
    reopen: ReopenSection = _section()
    max_pixels: int = Field(default=7680 * 4320, ge=1)
    # Per-camera overrides of the top-level sections (key by key), and the camera's zones.
    detect: DetectSection = _section()
    motion: MotionSection = _section()
    events: EventsSection = _section()
    record: RecordSection = _section()
    zones: dict[ZoneName, ZoneSection] = Field(default_factory=dict)


class DrawSection(_Section):
    min_score: float = Field(default=0.6, ge=0.0, le=1.0)
    # Box IoU above which a lower-scoring detection is not drawn, whatever its class (one tag
    # per object); null draws every detection.
    suppress_iou: float | None = Field(default=0.5, gt=0.0, le=1.0)
    masks: bool = True
    keypoints: bool = True
    fps: bool = True


class PreviewOutput(_Section):
    enabled: bool = False
    window_title: str = "d2stream"
    max_fps: float = Field(default=30.0, gt=0)


class HttpOutput(_Section):
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    jpeg_quality: int = Field(default=80, ge=1, le=100)
    max_fps: float = Field(default=15.0, gt=0)
    overlay: Literal["tracked", "detections"] = "tracked"
    token: str | None = Field(default=None, min_length=16, pattern=r"^[\x21-\x7e]+$")
    username: str | None = Field(default=None, min_length=1, pattern=r"^[^:\s]+$")
    password: str | None = Field(default=None, min_length=8)
    max_clients: int = Field(default=8, ge=1, le=1000)
    max_connections: int = Field(default=32, ge=2, le=10000)
    client_timeout_s: float = Field(default=10.0, gt=0)

    @field_validator("token", "username", "password", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if value == "" else value  # ${VAR:-} left unset

    @model_validator(mode="after")
    def _credentials(self) -> HttpOutput:
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together (HTTP basic auth)")
        if self.enabled and not is_loopback(self.host) and not self.has_credentials():
            raise ValueError(
                f"host {self.host!r} is reachable from other machines: set token (or "
                "username and password) so that the stream and metrics need credentials")
        return self

    def has_credentials(self) -> bool:
        return self.token is not None or self.password is not None


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) is reachable only from this machine."""
    if host.strip().lower() in ("localhost", "localhost.localdomain", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False


class EventLogOutput(_Section):
    enabled: bool = True
    path: StatePath = Field(default=Path("var/events.jsonl"), validate_default=True)
    max_bytes: int = Field(default=10_000_000, ge=1024)
    backups: int = Field(default=5, ge=0, le=1000)
    fsync: Literal["always", "interval", "never"] = "interval"
    fsync_interval_s: float = Field(default=5.0, gt=0)
    backlog: int = Field(default=10_000, ge=1)


class JournalSection(_Section):
    enabled: bool = True
    path: StatePath = Field(default=Path("var/journal.db"), validate_default=True)


class SnapshotOutput(_Section):
    enabled: bool = False
    dir: StatePath = Field(default=Path("var/snapshots"), validate_default=True)
    jpeg_quality: int = Field(default=85, ge=1, le=100)
    annotate: bool = True
    max_files: int = Field(default=1000, ge=1)
    max_age_days: float = Field(default=0.0, ge=0)
    max_bytes: int = Field(default=0, ge=0)


class DatabaseOutput(_Section):
    enabled: bool = False
    path: StatePath = Field(default=Path("var/events.db"), validate_default=True)


class RecordingsOutput(_Section):
    enabled: bool = False
    dir: StatePath = Field(default=Path("var/recordings"), validate_default=True)
    segment_s: float = Field(default=10.0, ge=1, le=600)
    max_bytes: int = Field(default=0, ge=0)  # 0: no budget but the free-space floor
    min_free_bytes: int = Field(default=1_000_000_000, ge=0)
    ffmpeg: str = "ffmpeg"
    ffprobe: str = "ffprobe"
    prune_interval_s: float = Field(default=10.0, gt=0)


class OutputsSection(_Section):
    frame_queue_size: int = Field(default=2, ge=1, le=1000)
    event_queue_size: int = Field(default=1000, ge=1, le=1_000_000)
    journal: JournalSection = _section()
    preview: PreviewOutput = _section()
    http: HttpOutput = _section()
    event_log: EventLogOutput = _section()
    mqtt: MqttOutput = _section()
    snapshots: SnapshotOutput = _section()
    database: DatabaseOutput = _section()
    recordings: RecordingsOutput = _section()

    @model_validator(mode="after")
    def _recordings_need_database(self) -> OutputsSection:
        check_recordings(self)
        return self

    @model_validator(mode="after")
    def _mqtt_snapshots(self) -> OutputsSection:
        if self.mqtt.enabled and self.mqtt.snapshots and not self.snapshots.enabled:
            raise ValueError("mqtt.snapshots publishes the snapshot of each event: it needs "
                             "outputs.snapshots.enabled: true")
        return self


class ServiceSection(_Section):
    status_interval_s: float = Field(default=5.0, gt=0)
    watchdog: bool = True
    stop_timeout_s: float = Field(default=10.0, gt=0)


class DaemonConfig(_Section):
    model: ModelSection
    worker: WorkerSection = _section()
    cameras: list[CameraSection] = Field(min_length=1)
    detect: DetectSection = _section()
    motion: MotionSection = _section()
    events: EventsSection = _section()
    tracking: TrackingSection = _section()
    record: RecordSection = _section()
    draw: DrawSection = _section()
    outputs: OutputsSection = _section()
    service: ServiceSection = _section()
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    def enabled_cameras(self) -> list[CameraSection]:
        return [c for c in self.cameras if c.enabled]

    def camera_settings(self, camera: CameraSection) -> CameraEventSettings:
        """``detect``, ``motion`` and ``events`` of ``camera``: the top-level sections with the
        keys the camera sets itself replaced (``events.filters`` merged label by label)."""
        return CameraEventSettings(detect=overlay(self.detect, camera.detect),
                                   motion=overlay(self.motion, camera.motion),
                                   events=overlay(self.events, camera.events),
                                   zones=dict(camera.zones))

    def camera_record(self, camera: CameraSection) -> RecordSection:
        """``record`` of ``camera``: the top-level section with the camera's own keys."""
        return overlay(self.record, camera.record)
