"""COCO RLE: byte-identical to pycocotools, and a lossless round trip."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from pycocotools import mask as mask_utils  # the reference (dev extra); the device never needs it

from daemon.inference.rle import decode_rle, encode_rle, mask_to_counts

masks = st.tuples(st.integers(1, 40), st.integers(1, 40)).flatmap(
    lambda hw: arrays(np.bool_, hw))


def _coco(mask: np.ndarray) -> dict:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": list(rle["size"]), "counts": rle["counts"].decode("ascii")}


@settings(max_examples=300, deadline=None)
@given(masks)
def test_encoding_is_pycocotools(mask: np.ndarray) -> None:
    rle = encode_rle(mask)
    assert rle == _coco(mask)
    np.testing.assert_array_equal(decode_rle(rle), mask)


def test_large_runs_and_special_masks() -> None:
    big = np.zeros((1080, 1920), bool)
    big[100:900, 3:1900] = True
    big[500, 7] = False
    for mask in (big, np.zeros((5, 7), bool), np.ones((5, 7), bool), np.eye(9, dtype=bool)):
        assert encode_rle(mask) == _coco(mask)
        np.testing.assert_array_equal(decode_rle(encode_rle(mask)), mask)
    assert mask_to_counts(np.ones((2, 2), bool)) == [0, 4]
    assert mask_to_counts(np.array([[0, 1], [0, 1]], bool)) == [2, 2]  # column-major


def test_decode_rejects_inconsistent_size() -> None:
    with pytest.raises(ValueError, match="cover 4 pixels"):
        decode_rle({"size": [3, 3], "counts": [1, 3]})
