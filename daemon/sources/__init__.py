"""Capture side of the pipeline: camera sources (a producer thread in
:mod:`daemon.pipeline.producer` reads each)."""

from __future__ import annotations

from daemon.config.schema import (
    CameraSection,
    FolderSourceConfig,
    OpenCVSourceConfig,
    PiCameraSourceConfig,
)
from daemon.sources.base import FrameSource, SourceError

__all__ = ["FrameSource", "SourceError", "create_source"]


def create_source(
    camera: CameraSection, model_min_max: tuple[int, int] | None = None
) -> FrameSource:
    """The :class:`FrameSource` for ``camera.source`` (not opened yet).

    Args:
        camera: the camera's config section.
        model_min_max: the model's ``(min_size_test, max_size_test)``: the picamera2 source sizes
            its model stream from it.
    """
    spec = camera.source
    if isinstance(spec, OpenCVSourceConfig):
        from daemon.sources.opencv_capture import OpenCVSource  # noqa: PLC0415

        return OpenCVSource(camera.name, spec)
    if isinstance(spec, FolderSourceConfig):
        from daemon.sources.folder import FolderSource  # noqa: PLC0415

        return FolderSource(camera.name, spec, max_pixels=camera.max_pixels)
    if isinstance(spec, PiCameraSourceConfig):
        from daemon.sources.picamera import PiCameraSource  # noqa: PLC0415

        return PiCameraSource(camera.name, spec, model_min_max)
    raise TypeError(f"unknown source config {type(spec).__name__}")
