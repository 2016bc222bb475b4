"""User-facing errors: each names what is wrong and where (file, config key, tensor)."""

from __future__ import annotations


class D2StreamError(Exception):
    """Base class for errors shown to the user as one line, without a traceback."""

    exit_code = 1


class ModelError(D2StreamError):
    """An ONNX model file that cannot be loaded or lacks what d2stream needs."""


class InputImageError(D2StreamError):
    """An input image that cannot be read or is not usable."""
