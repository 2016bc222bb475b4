"""Minimum-cost assignment (Hungarian algorithm, O(n^2 m)) without scipy.

Used by the tracker to pair tracks with detections; matrices are small (tens of rows).
"""

from __future__ import annotations

import numpy as np


def _hungarian_rows_le_cols(cost: np.ndarray) -> np.ndarray:
    """Column assigned to each row of an ``(n, m)`` cost matrix with ``n <= m`` (shortest
    augmenting paths with row and column potentials)."""
    n, m = cost.shape
    u = np.zeros(n + 1)
    v = np.zeros(m + 1)
    owner = np.zeros(m + 1, np.int64)  # owner[j]: 1-based row holding column j (0: free)
    way = np.zeros(m + 1, np.int64)
    for row in range(1, n + 1):
        owner[0] = row
        j0 = 0
        minv = np.full(m + 1, np.inf)
        used = np.zeros(m + 1, bool)
        while True:
            used[j0] = True
            i0 = owner[j0]
            free = ~used[1:]
            reduced = cost[i0 - 1] - u[i0] - v[1:]
            better = free & (reduced < minv[1:])
            minv[1:][better] = reduced[better]
            way[1:][better] = j0
            candidates = np.where(free, minv[1:], np.inf)
            j1 = int(np.argmin(candidates)) + 1
            delta = candidates[j1 - 1]
            used_cols = np.flatnonzero(used)
            u[owner[used_cols]] += delta
            v[used_cols] -= delta
            minv[1:][free] -= delta
            j0 = j1
            if owner[j0] == 0:
                break
        while j0:
            j1 = way[j0]
            owner[j0] = owner[j1]
            j0 = j1
    assigned = np.full(n, -1, np.int64)
    for j in range(1, m + 1):
        if owner[j]:
            assigned[owner[j] - 1] = j - 1
    return assigned


def linear_assignment(cost: np.ndarray) -> list[tuple[int, int]]:
    """Pairs ``(row, col)`` of a minimum-cost assignment of an ``(n, m)`` matrix of finite
    costs; ``min(n, m)`` pairs, sorted by row."""
    cost = np.asarray(cost, np.float64)
    if cost.size == 0:
        return []
    if cost.shape[0] <= cost.shape[1]:
        cols = _hungarian_rows_le_cols(cost)
        return [(i, int(j)) for i, j in enumerate(cols)]
    rows = _hungarian_rows_le_cols(cost.T)
    return sorted((int(i), j) for j, i in enumerate(rows))


def match_by_iou(iou: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """Pairs ``(row, col)`` with IoU >= ``threshold``: as many pairs as possible, and among
    those the largest total IoU (pairs below the threshold are never made); sorted by row.

    Rows and columns linked by no allowed pair cannot affect each other, so each connected
    group of allowed pairs is solved on its own: a track overlapping a single detection (the
    common case) is paired directly, and the assignment runs only on the crowded groups.
    """
    iou = np.asarray(iou, np.float64)
    if iou.size == 0:
        return []
    allowed = iou >= threshold
    pairs: list[tuple[int, int]] = []
    for rows, cols in _connected_groups(allowed):
        if rows.size == 1 and cols.size == 1:
            pairs.append((int(rows[0]), int(cols[0])))
            continue
        sub_iou, sub_allowed = iou[np.ix_(rows, cols)], allowed[np.ix_(rows, cols)]
        # Forbidden pairs cost more than any set of allowed ones, so they are taken only when
        # a row has nothing else, and are then dropped.
        penalty = float(min(sub_iou.shape)) + 1.0
        cost = np.where(sub_allowed, 1.0 - sub_iou, penalty)
        pairs += [(int(rows[i]), int(cols[j])) for i, j in linear_assignment(cost)
                  if sub_allowed[i, j]]
    return sorted(pairs)


def _connected_groups(allowed: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """The connected components of the bipartite graph of ``allowed`` ``(n, m)`` pairs, as
    ``(rows, cols)`` index arrays (rows and columns without any allowed pair are left out)."""
    n = allowed.shape[0]
    edge_rows, edge_cols = np.nonzero(allowed)
    parent = list(range(n + allowed.shape[1]))  # union-find: rows 0..n-1, columns n..

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for r, c in zip(edge_rows.tolist(), edge_cols.tolist(), strict=True):
        a, b = root(r), root(n + c)
        if a != b:
            parent[b] = a
    groups: dict[int, tuple[list[int], list[int]]] = {}
    for r in np.unique(edge_rows).tolist():
        groups.setdefault(root(r), ([], []))[0].append(r)
    for c in np.unique(edge_cols).tolist():
        groups.setdefault(root(n + c), ([], []))[1].append(c)
    return [(np.array(rows), np.array(cols)) for rows, cols in groups.values()]
