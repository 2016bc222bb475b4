"""Zone polygons: validation of configured outlines and point-in-polygon tests.

A zone outline is a list of ``[x, y]`` points, in pixels of the camera's display image or, when
every value lies in ``[0, 1]``, in fractions of its width and height. Validation is pure Python
(the config loader uses it); the runtime test is vectorised over points with numpy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

Point = tuple[float, float]


class PolygonError(ValueError):
    """An outline that cannot be a zone (the message says why)."""


def parse_points(value: object) -> list[Point]:
    """``[[x, y], ...]`` or ``"x,y,x,y,..."`` (Frigate's form) -> points.

    Raises:
        PolygonError: not a list of pairs of finite numbers.
    """
    if isinstance(value, str):
        parts = [p.strip() for p in value.split(",") if p.strip()]
        try:
            numbers = [float(p) for p in parts]
        except ValueError:
            raise PolygonError(f"expected numbers separated by commas, got {value!r}") from None
        if len(numbers) % 2:
            raise PolygonError(f"an odd number of values ({len(numbers)}): x,y pairs expected")
        pairs: Sequence[object] = [numbers[i:i + 2] for i in range(0, len(numbers), 2)]
    elif isinstance(value, (list, tuple)):
        pairs = value
    else:
        raise PolygonError(f"expected a list of [x, y] points, got {type(value).__name__}")
    points = []
    for i, pair in enumerate(pairs):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise PolygonError(f"point {i} is not an [x, y] pair: {pair!r}")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in pair):
            raise PolygonError(f"point {i} has a non-numeric coordinate: {pair!r}")
        x, y = float(pair[0]), float(pair[1])
        if not (math.isfinite(x) and math.isfinite(y)):
            raise PolygonError(f"point {i} is not finite: {pair!r}")
        points.append((x, y))
    return points


def is_fractional(points: Sequence[Point]) -> bool:
    """Whether an outline is given in fractions of the frame (every value within [0, 1])."""
    return all(0.0 <= v <= 1.0 for p in points for v in p)


def signed_area(points: Sequence[Point]) -> float:
    """Shoelace area (positive for counter-clockwise outlines in y-up axes)."""
    total = 0.0
    for (x0, y0), (x1, y1) in zip(points, [*points[1:], points[0]], strict=True):
        total += x0 * y1 - x1 * y0
    return total / 2.0


def _orientation(a: Point, b: Point, c: Point) -> float:
    return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])


def _on_segment(a: Point, b: Point, p: Point) -> bool:
    return (min(a[0], b[0]) <= p[0] <= max(a[0], b[0])
            and min(a[1], b[1]) <= p[1] <= max(a[1], b[1]))


def segments_intersect(a: Point, b: Point, c: Point, d: Point) -> bool:
    """Whether segments ``ab`` and ``cd`` touch or cross (collinear overlaps included)."""
    o1, o2 = _orientation(a, b, c), _orientation(a, b, d)
    o3, o4 = _orientation(c, d, a), _orientation(c, d, b)
    if ((o1 > 0) != (o2 > 0)) and o1 != 0 and o2 != 0 and \
            ((o3 > 0) != (o4 > 0)) and o3 != 0 and o4 != 0:
        return True
    return ((o1 == 0 and _on_segment(a, b, c)) or (o2 == 0 and _on_segment(a, b, d))
            or (o3 == 0 and _on_segment(c, d, a)) or (o4 == 0 and _on_segment(c, d, b)))


def self_intersection(points: Sequence[Point]) -> tuple[int, int] | None:
    """The first pair of non-adjacent edges that touch or cross (edge ``i`` runs from point
    ``i`` to point ``i+1``), or ``None`` for a simple polygon."""
    n = len(points)
    edges = [(points[i], points[(i + 1) % n]) for i in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            if j == i + 1 or (i == 0 and j == n - 1):
                continue  # neighbours share a vertex
            if segments_intersect(*edges[i], *edges[j]):
                return i, j
    return None


def validate_polygon(value: object) -> list[Point]:
    """Check a configured zone outline; returns its points.

    Raises:
        PolygonError: fewer than 3 points, negative or mixed units, repeated points, no area,
            or edges that cross.
    """
    points = parse_points(value)
    if len(points) < 3:
        raise PolygonError(f"a zone needs at least 3 points, got {len(points)}")
    if any(v < 0 for p in points for v in p):
        raise PolygonError("coordinates must not be negative")
    if not is_fractional(points):
        tiny = [v for p in points for v in p if 0.0 < v < 1.0]
        if tiny:
            raise PolygonError(f"mixes fractions ({tiny[0]:g}) with pixel coordinates: use "
                               "either all values in [0, 1] or pixels")
    if len(set(points)) != len(points):
        raise PolygonError("a point is repeated")
    crossing = self_intersection(points)
    if crossing is not None:
        i, j = crossing
        raise PolygonError(f"edges {i}-{(i + 1) % len(points)} and {j}-{(j + 1) % len(points)} "
                           "cross (self-intersecting outline)")
    if abs(signed_area(points)) <= 1e-12:
        raise PolygonError("the outline has no area (its points are on one line)")
    return points


def to_pixels(points: Sequence[Point], width: int, height: int) -> np.ndarray:
    """``(P, 2)`` float64 outline in pixels of a ``width x height`` image."""
    array = np.asarray(points, np.float64).reshape(-1, 2)
    if is_fractional(points):
        array = array * [width, height]
    return array


def points_in_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Even-odd rule test of ``(N, 2)`` points against a ``(P, 2)`` outline; points on an
    edge count as inside. Returns ``(N,)`` bool."""
    points = np.asarray(points, np.float64).reshape(-1, 2)
    x, y = points[:, 0:1], points[:, 1:2]
    x0, y0 = polygon[:, 0], polygon[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    straddles = (y0 > y) != (y1 > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_cross = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
    inside = (straddles & (x < x_cross)).sum(axis=1) % 2 == 1
    return inside | _on_boundary(points, polygon)


def _on_boundary(points: np.ndarray, polygon: np.ndarray, eps: float = 1e-9) -> np.ndarray:
    a = polygon[None, :, :]
    b = np.roll(polygon, -1, axis=0)[None, :, :]
    p = points[:, None, :]
    ab, ap = b - a, p - a
    cross = ab[..., 0] * ap[..., 1] - ab[..., 1] * ap[..., 0]
    dot = (ap * ab).sum(-1)
    length2 = (ab * ab).sum(-1)
    return ((np.abs(cross) <= eps * np.maximum(length2, 1.0)) & (dot >= -eps)
            & (dot <= length2 + eps)).any(axis=1)
