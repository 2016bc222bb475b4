"""Real image files that a camera folder should survive: corrupt, empty, huge, odd formats."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
from PIL import Image


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def write_big_png(path: Path, width: int, height: int) -> Path:
    """A valid all-black RGB PNG of ``width x height``, written row by row (small memory):
    decoding it would allocate ``3 * width * height`` bytes."""
    compressor = zlib.compressobj(1)
    row = b"\x00" * (1 + 3 * width)  # filter byte + pixels
    with open(path, "wb") as fh:
        fh.write(b"\x89PNG\r\n\x1a\n")
        fh.write(_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)))
        pending = bytearray()
        for _ in range(height):
            pending += compressor.compress(row)
            if len(pending) > 1 << 20:
                fh.write(_chunk(b"IDAT", bytes(pending)))
                pending.clear()
        pending += compressor.flush()
        fh.write(_chunk(b"IDAT", bytes(pending)))
        fh.write(_chunk(b"IEND", b""))
    return path


def write_hostile_images(folder: Path, good: np.ndarray) -> dict[str, str]:
    """Bad files beside good ones; returns ``file name -> expected rejection reason``.

    Also writes images in unusual but valid formats (16-bit, gray+alpha, RGBA, palette, CMYK,
    1-bit) that must be accepted."""
    folder.mkdir(parents=True, exist_ok=True)
    jpeg = cv2.imencode(".jpg", good)[1].tobytes()
    (folder / "bad_truncated.jpg").write_bytes(jpeg[: len(jpeg) // 3])
    (folder / "bad_empty.jpg").write_bytes(b"")
    (folder / "bad_text.png").write_text("this is not an image\n")
    (folder / "bad_header_only.png").write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(
        b"IHDR", struct.pack(">IIBBBBB", 640, 480, 8, 2, 0, 0, 0)))
    write_big_png(folder / "bad_huge.png", 12_000, 12_000)
    rgb = good[:, :, ::-1]
    gray16 = (good[:, :, 1].astype(np.uint16) * 257)
    Image.fromarray(gray16).save(folder / "ok_gray16.png")
    Image.fromarray(rgb).convert("LA").save(folder / "ok_gray_alpha.png")
    Image.fromarray(rgb).convert("RGBA").save(folder / "ok_rgba.png")
    Image.fromarray(rgb).convert("P").save(folder / "ok_palette.png")
    Image.fromarray(rgb).convert("CMYK").save(folder / "ok_cmyk.jpg")
    Image.fromarray(rgb).convert("1").save(folder / "ok_bilevel.png")
    return {"bad_truncated.jpg": "unreadable", "bad_empty.jpg": "unreadable",
            "bad_text.png": "unreadable", "bad_header_only.png": "unreadable",
            "bad_huge.png": "too_large"}
