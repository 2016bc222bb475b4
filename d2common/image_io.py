"""Reading image files the way a user expects: EXIF rotation applied, gray/RGBA/16-bit handled."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from d2common.errors import InputImageError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
DEFAULT_MAX_PIXELS = 100_000_000


def read_image_bgr(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """``(H, W, 3)`` uint8 BGR; raises :class:`InputImageError` naming the file."""
    p = Path(path)
    try:
        with Image.open(p) as img:
            if img.width * img.height > max_pixels:
                raise InputImageError(f"{p}: {img.width}x{img.height} exceeds the limit of "
                                      f"{max_pixels} pixels")
            img = ImageOps.exif_transpose(img)
            rgb = _to_rgb8(img)
    except InputImageError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise InputImageError(f"{p}: not a readable image ({exc})") from exc
    if rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise InputImageError(f"{p}: image has zero size")
    return np.ascontiguousarray(rgb[:, :, ::-1])


def _to_rgb8(img: Image.Image) -> np.ndarray:
    """Any PIL mode -> RGB uint8: gray repeated to 3 channels, alpha dropped, 16-bit scaled."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img).astype(np.float64)
        scale = 257.0 if arr.max(initial=0) > 255 else 1.0
        gray = np.clip(arr / scale + 0.5 if scale > 1 else arr, 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if img.mode == "F":
        arr = np.clip(np.asarray(img), 0, 255).astype(np.uint8)
        return np.repeat(arr[:, :, None], 3, axis=2)
    return np.asarray(img.convert("RGB"))


def list_images(inputs: list[str]) -> list[Path]:
    """Files given directly, plus image files (sorted) inside given folders."""
    out: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            out.extend(sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES))
        else:
            out.append(p)
    return out
