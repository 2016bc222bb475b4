"""COCO run-length encoding of binary masks, byte-identical to ``pycocotools.mask.encode``.

A mask is read in column-major order; ``counts`` alternates runs of 0s and 1s, starting with 0s
(so a mask whose first pixel is set starts with a zero-length run). The compressed string stores
each count (after the third, as the difference to the count two places before) in 5-bit groups,
least significant first, each group offset by 48 into printable ASCII with bit 0x20 marking that
more groups follow. No pycocotools needed on the device.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def mask_to_counts(mask: np.ndarray) -> list[int]:
    """Run lengths of a 2-D mask in column-major order, starting with a run of 0s."""
    flat = np.asarray(mask, dtype=bool).T.reshape(-1)
    if flat.size == 0:
        return []
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate([[0], changes, [flat.size]])
    runs = np.diff(bounds).tolist()
    return [0, *runs] if flat[0] else runs


def counts_to_string(counts: list[int]) -> str:
    """pycocotools' compressed string for ``counts``."""
    out: list[str] = []
    for i, count in enumerate(counts):
        x = count - counts[i - 2] if i > 2 else count
        more = True
        while more:
            c = x & 0x1F
            x >>= 5  # arithmetic shift: negative differences end at -1
            more = x != -1 if c & 0x10 else x != 0
            out.append(chr((c | 0x20 if more else c) + 48))
    return "".join(out)


def string_to_counts(text: str) -> list[int]:
    """Inverse of :func:`counts_to_string`."""
    counts: list[int] = []
    pos = 0
    while pos < len(text):
        x, shift, more = 0, 0, True
        while more:
            c = ord(text[pos]) - 48
            x |= (c & 0x1F) << shift
            more = bool(c & 0x20)
            pos += 1
            shift += 5
            if not more and c & 0x10:
                x |= -1 << shift
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def encode_rle(mask: np.ndarray) -> dict[str, Any]:
    """``(H, W)`` bool mask -> ``{"size": [H, W], "counts": str}`` (JSON-ready COCO RLE)."""
    h, w = mask.shape
    return {"size": [int(h), int(w)], "counts": counts_to_string(mask_to_counts(mask))}


def decode_rle(rle: dict[str, Any]) -> np.ndarray:
    """COCO RLE (``counts`` as str, bytes or a list of ints) -> ``(H, W)`` bool mask."""
    h, w = (int(v) for v in rle["size"])
    counts = rle["counts"]
    if isinstance(counts, bytes):
        counts = counts.decode("ascii")
    if isinstance(counts, str):
        counts = string_to_counts(counts)
    values = np.zeros(len(counts), bool)
    values[1::2] = True
    flat = np.repeat(values, counts)
    if flat.size != h * w:
        raise ValueError(f"RLE counts cover {flat.size} pixels, size says {h}x{w}")
    return flat.reshape(w, h).T
