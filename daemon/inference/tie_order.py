"""Detectron2's order for detections with exactly equal scores.

Detectron2 sorts the boxes kept by per-class NMS with torch's CPU sort. torchvision's
``batched_nms`` takes its per-class path when more than 1000 boxes enter NMS (``numel > 4000``),
and that path sorts the kept boxes with torch's default, *unstable* sort (libstdc++'s introsort),
so equal scores come out in the order that algorithm produces; with at most 1000 boxes the order is
stable (candidate order). The graph cannot express introsort, so it hands over every kept score
(in candidate order) and the best detections plus any tied with the last one; here the same
introsort runs on the scores to pick and order the final detections exactly as Detectron2 does.
"""

from __future__ import annotations

import math

import numpy as np

# torchvision: batched NMS uses the per-class loop above 4000 box coordinates (1000 boxes).
VANILLA_NMS_MIN_BOXES = 1001
_INSERTION_THRESHOLD = 16


def torch_sort_descending(values: np.ndarray) -> np.ndarray:
    """Indices that torch's CPU ``sort(descending=True)`` (stable=False) returns for ``values``."""
    return _Introsort([(float(v), i) for i, v in enumerate(values)]).run()


class _Introsort:
    """libstdc++ ``std::sort`` on ``(key, index)`` pairs with ``comp(a, b) = a.key > b.key``."""

    def __init__(self, items: list[tuple[float, int]]) -> None:
        self.a = items

    def _lt(self, x: tuple[float, int], y: tuple[float, int]) -> bool:
        return x[0] > y[0]

    def run(self) -> np.ndarray:
        n = len(self.a)
        if n > 1:
            self._loop(0, n, 2 * int(math.log2(n)))
            self._final_insertion(n)
        return np.asarray([i for _, i in self.a], dtype=np.int64)

    def _loop(self, first: int, last: int, depth: int) -> None:
        while last - first > _INSERTION_THRESHOLD:
            if depth == 0:
                self._heapsort(first, last)
                return
            depth -= 1
            self._median_to_first(first, first + 1, first + (last - first) // 2, last - 1)
            cut = self._partition(first + 1, last, first)
            self._loop(cut, last, depth)
            last = cut

    def _median_to_first(self, result: int, x: int, y: int, z: int) -> None:
        a, lt = self.a, self._lt
        if lt(a[x], a[y]):
            pick = y if lt(a[y], a[z]) else (z if lt(a[x], a[z]) else x)
        else:
            pick = x if lt(a[x], a[z]) else (z if lt(a[y], a[z]) else y)
        a[result], a[pick] = a[pick], a[result]

    def _partition(self, first: int, last: int, pivot: int) -> int:
        a, lt = self.a, self._lt
        while True:
            while lt(a[first], a[pivot]):
                first += 1
            last -= 1
            while lt(a[pivot], a[last]):
                last -= 1
            if not first < last:
                return first
            a[first], a[last] = a[last], a[first]
            first += 1

    def _final_insertion(self, n: int) -> None:
        head = min(n, _INSERTION_THRESHOLD)
        for i in range(1, head):
            if self._lt(self.a[i], self.a[0]):
                val = self.a[i]
                self.a[1:i + 1] = self.a[0:i]
                self.a[0] = val
            else:
                self._linear_insert(i)
        for i in range(head, n):
            self._linear_insert(i)

    def _linear_insert(self, last: int) -> None:
        a, lt = self.a, self._lt
        val, nxt = a[last], last - 1
        while lt(val, a[nxt]):
            a[last] = a[nxt]
            last, nxt = nxt, nxt - 1
        a[last] = val

    def _heapsort(self, first: int, last: int) -> None:
        length = last - first
        for parent in range((length - 2) // 2, -1, -1):
            self._adjust(first, parent, length, self.a[first + parent])
        while last - first > 1:
            last -= 1
            value = self.a[last]
            self.a[last] = self.a[first]
            self._adjust(first, 0, last - first, value)

    def _adjust(self, first: int, hole: int, length: int, value: tuple[float, int]) -> None:
        a, lt = self.a, self._lt
        top = child = hole
        while child < (length - 1) // 2:
            child = 2 * (child + 1)
            if lt(a[first + child], a[first + child - 1]):
                child -= 1
            a[first + hole] = a[first + child]
            hole = child
        if length % 2 == 0 and child == (length - 2) // 2:
            child = 2 * (child + 1)
            a[first + hole] = a[first + child - 1]
            hole = child - 1
        parent = (hole - 1) // 2
        while hole > top and lt(a[first + parent], value):
            a[first + hole] = a[first + parent]
            hole, parent = parent, (parent - 1) // 2
        a[first + hole] = value


def detectron2_rows(kept_scores: np.ndarray, kept_rank: np.ndarray, num_candidates: int,
                    cap: int) -> np.ndarray:
    """Rows of the graph's detections to keep, in Detectron2's order.

    Args:
        kept_scores: ``(S,)`` scores of every box kept by NMS, in candidate order.
        kept_rank: ``(D,)`` position in ``kept_scores`` of each graph detection row.
        num_candidates: how many boxes entered NMS.
        cap: DETECTIONS_PER_IMAGE (negative: no cap).
    """
    d = kept_rank.shape[0]
    limit = d if cap < 0 else min(cap, d)
    if num_candidates < VANILLA_NMS_MIN_BOXES or np.unique(kept_scores).size == kept_scores.size:
        return np.arange(limit)  # stable order: the graph's own
    order = torch_sort_descending(kept_scores)
    row_of = np.full(kept_scores.shape[0], -1, np.int64)
    row_of[kept_rank] = np.arange(d)
    rows = row_of[order[: (len(order) if cap < 0 else cap)]]
    if (rows < 0).any():  # cannot happen: the graph outputs every score tied with the last
        raise RuntimeError("tie order: a detection Detectron2 keeps is missing from the graph")
    return rows
