"""Minimum-cost assignment and IoU matching against brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from daemon.tracking.assignment import linear_assignment, match_by_iou
from daemon.tracking.geometry import iou_matrix, suppress_duplicates


def brute_force_cost(cost: np.ndarray) -> float:
    n, m = cost.shape
    if n <= m:
        return min(sum(cost[i, p[i]] for i in range(n))
                   for p in itertools.permutations(range(m), n))
    return min(sum(cost[p[j], j] for j in range(m)) for p in itertools.permutations(range(n), m))


shapes = st.tuples(st.integers(1, 5), st.integers(1, 5))


@settings(max_examples=200, deadline=None)
@given(shapes.flatmap(lambda s: arrays(np.float64, s, elements=st.floats(0, 10, width=32))))
def test_assignment_is_optimal_and_one_to_one(cost: np.ndarray) -> None:
    pairs = linear_assignment(cost)
    assert len(pairs) == min(cost.shape)
    assert len({i for i, _ in pairs}) == len({j for _, j in pairs}) == len(pairs)
    assert sum(cost[i, j] for i, j in pairs) == pytest.approx(brute_force_cost(cost), abs=1e-6)


@pytest.mark.parametrize(("ious", "threshold", "expected"), [
    # greedy would take (0, 0) = 0.9 and leave row 1 unmatched; the optimum matches both
    ([[0.9, 0.8], [0.85, 0.0]], 0.5, [(0, 1), (1, 0)]),
    ([[0.2, 0.1]], 0.3, []),                       # nothing reaches the threshold
    ([[0.3, 0.1]], 0.3, [(0, 0)]),                 # the threshold itself is enough
    ([[0.6], [0.7], [0.1]], 0.5, [(1, 0)]),        # more tracks than detections
    ([[0.0, 0.0, 0.9]], 0.5, [(0, 2)]),
    (np.zeros((0, 3)), 0.5, []),
])
def test_match_by_iou(ious: list, threshold: float, expected: list) -> None:
    assert sorted(match_by_iou(np.asarray(ious, np.float64), threshold)) == expected


def test_iou_matrix_values() -> None:
    a = np.array([[0, 0, 10, 10], [0, 0, 0, 0]], np.float64)
    b = np.array([[5, 0, 15, 10], [0, 0, 10, 10], [20, 20, 30, 30]], np.float64)
    got = iou_matrix(a, b)
    assert got.shape == (2, 3)
    assert got[0].tolist() == pytest.approx([50 / 150, 1.0, 0.0])
    assert got[1].tolist() == [0.0, 0.0, 0.0]  # empty box: no division by zero


def test_class_agnostic_suppression_keeps_the_best_of_overlapping_labels() -> None:
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 9], [50, 50, 60, 60]], np.float64)
    scores = np.array([0.6, 0.9, 0.7])
    assert suppress_duplicates(boxes, scores, 0.7).tolist() == [1, 2]
    assert sorted(suppress_duplicates(boxes, scores, 0.0).tolist()) == [0, 1, 2]  # off


def global_match(iou: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """One assignment over the whole matrix (what the grouped matcher must equal in value)."""
    allowed = iou >= threshold
    cost = np.where(allowed, 1.0 - iou, float(min(iou.shape)) + 1.0)
    return [(i, j) for i, j in linear_assignment(cost) if allowed[i, j]]


@settings(max_examples=300, deadline=None)
@given(st.tuples(st.integers(1, 12), st.integers(1, 12)).flatmap(
    lambda s: arrays(np.float64, s, elements=st.sampled_from([0.0, 0.0, 0.0, 0.2, 0.35, 0.5,
                                                              0.6, 0.75, 0.9, 1.0]))))
def test_grouped_matching_equals_one_global_assignment(iou: np.ndarray) -> None:
    """Sparse overlaps, ties included: solving each connected group alone makes as many pairs
    and the same total IoU as one assignment over everything, one-to-one and sorted."""
    got, ref = match_by_iou(iou, 0.3), global_match(iou, 0.3)
    assert len(got) == len(ref)
    assert sum(iou[i, j] for i, j in got) == pytest.approx(sum(iou[i, j] for i, j in ref))
    assert len({i for i, _ in got}) == len({j for _, j in got}) == len(got)
    assert got == sorted(got) and all(iou[i, j] >= 0.3 for i, j in got)
