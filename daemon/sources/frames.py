"""Checks every captured image before it enters the pipeline.

A camera, a stream or an image file can deliver something unusable: nothing at all, a zero-size
image, an image of absurd dimensions (a hostile stream or a decompression bomb), two channels,
16-bit or floating-point samples. :func:`usable_frame` turns what can be used into the
``(H, W, 3)`` uint8 BGR the model expects and refuses the rest with :class:`FrameRejected`,
so that one bad frame is counted and skipped while the daemon keeps going.
"""

from __future__ import annotations

import cv2
import numpy as np

from d2common.errors import D2StreamError

#: 8K UHD (7680 x 4320): the default ``cameras[].max_pixels``.
DEFAULT_MAX_PIXELS = 7680 * 4320


class FrameRejected(D2StreamError):
    """An image that cannot be used; ``reason`` is a short tag counted in the metrics
    (``unreadable``, ``empty``, ``too_large``, ``channels``, ``dtype``)."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


def usable_frame(image: object, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """``image`` as contiguous ``(H, W, 3)`` uint8 BGR.

    Accepts gray ``(H, W)`` or ``(H, W, 1)``, BGR, BGRA; uint8, uint16 (scaled to 8 bits) and
    bool. Raises :class:`FrameRejected` for anything else, for an empty image, and for more
    than ``max_pixels`` pixels (before any conversion allocates memory).
    """
    if not isinstance(image, np.ndarray):
        raise FrameRejected("unreadable", f"no image (got {type(image).__name__})")
    if image.ndim not in (2, 3):
        raise FrameRejected("channels", f"expected an (H, W) or (H, W, C) image, got shape "
                                        f"{image.shape}")
    height, width = image.shape[:2]
    if height == 0 or width == 0 or image.size == 0:
        raise FrameRejected("empty", f"image has zero size {image.shape}")
    if height * width > max_pixels:
        raise FrameRejected("too_large", f"{width}x{height} image exceeds the limit of "
                                         f"{max_pixels} pixels (cameras[].max_pixels)")
    image = _to_uint8(image)
    channels = 1 if image.ndim == 2 else image.shape[2]
    if channels == 1:
        return cv2.cvtColor(image.reshape(height, width), cv2.COLOR_GRAY2BGR)
    if channels == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if channels != 3:
        raise FrameRejected("channels", f"{channels}-channel image (expected 1, 3 or 4)")
    return np.ascontiguousarray(image)


def _to_uint8(image: np.ndarray) -> np.ndarray:
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        return ((image.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if image.dtype == np.bool_:
        return image.astype(np.uint8) * np.uint8(255)
    raise FrameRejected("dtype", f"{image.dtype} samples (expected 8- or 16-bit integers)")
