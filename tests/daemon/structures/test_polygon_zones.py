"""Zone outlines: validation (table-driven), point-in-polygon, zones of a box."""

from __future__ import annotations

import numpy as np
import pytest

from daemon.config.events_schema import ZoneSection
from daemon.structures.polygon import PolygonError, points_in_polygon, to_pixels, validate_polygon
from daemon.zones.zoneset import ZoneSet

SQUARE = [[0, 0], [100, 0], [100, 100], [0, 100]]


@pytest.mark.parametrize(("value", "points"), [
    (SQUARE, [(0, 0), (100, 0), (100, 100), (0, 100)]),
    ([[0.1, 0.1], [0.9, 0.1], [0.5, 0.8]], [(0.1, 0.1), (0.9, 0.1), (0.5, 0.8)]),
    ("0,0, 200,0, 200,50", [(0, 0), (200, 0), (200, 50)]),           # Frigate's string form
    ([[0, 0], [1, 0], [1, 1]], [(0, 0), (1, 0), (1, 1)]),             # fractions at the edges
    ([[10, 10], [300, 10], [150, 50], [300, 200], [10, 200]],         # concave
     [(10, 10), (300, 10), (150, 50), (300, 200), (10, 200)]),
    ([[0, 0], [100.5, 0], [100.5, 80]], [(0, 0), (100.5, 0), (100.5, 80)]),
])
def test_valid_outlines(value: object, points: list) -> None:
    assert validate_polygon(value) == points


@pytest.mark.parametrize(("value", "problem"), [
    ([[0, 0], [10, 0]], "at least 3 points, got 2"),
    ([], "at least 3 points, got 0"),
    ([[0, 0], [10, 0], [10]], "point 2 is not an [x, y] pair"),
    ([[0, 0], [10, 0], [10, 10, 3]], "point 2 is not an [x, y] pair"),
    ([[0, 0], [10, "a"], [10, 10]], "point 1 has a non-numeric coordinate"),
    ([[0, 0], [10, True], [10, 10]], "point 1 has a non-numeric coordinate"),
    ([[0, 0], [10, float("nan")], [10, 10]], "point 1 is not finite"),
    ([[0, 0], [-5, 0], [10, 10]], "must not be negative"),
    ([[0, 0], [0.5, 0], [200, 100]], "mixes fractions (0.5) with pixel coordinates"),
    ([[0, 0], [10, 10], [20, 20]], "no area"),
    ([[0, 0], [10, 0], [10, 10], [10, 0]], "a point is repeated"),
    ([[0, 0], [10, 10], [10, 0], [0, 10]], "edges 0-1 and 2-3 cross"),        # a bow tie
    ("1,2,3", "odd number of values"),
    ("1,x,3,4", "expected numbers separated by commas"),
    (42, "expected a list of [x, y] points, got int"),
])
def test_invalid_outlines(value: object, problem: str) -> None:
    with pytest.raises(PolygonError) as info:
        validate_polygon(value)
    assert problem in str(info.value)


@pytest.mark.parametrize(("point", "inside"), [
    ((50, 50), True), ((0, 0), True), ((100, 50), True),   # corners and edges count as inside
    ((100.01, 50), False), ((-1, 50), False), ((50, 150), False),
])
def test_points_in_a_square(point: tuple[float, float], inside: bool) -> None:
    polygon = np.asarray(SQUARE, np.float64)
    assert bool(points_in_polygon(np.array([point]), polygon)[0]) is inside


def test_points_in_a_concave_outline() -> None:
    # a "U": the notch between the arms is outside
    u = np.array([[0, 0], [30, 0], [30, 60], [70, 60], [70, 0], [100, 0], [100, 100], [0, 100]],
                 np.float64)
    points = np.array([[15, 20], [50, 20], [85, 20], [50, 80]])
    assert points_in_polygon(points, u).tolist() == [True, False, True, True]


def test_fractions_scale_to_the_image() -> None:
    assert to_pixels([(0.5, 0.25), (1, 1), (0, 1)], 320, 240).tolist() == \
        [[160, 60], [320, 240], [0, 240]]
    assert to_pixels([(5, 6), (100, 0), (0, 100)], 320, 240).tolist() == \
        [[5, 6], [100, 0], [0, 100]]


def test_an_object_is_in_the_zones_holding_the_bottom_centre_of_its_box() -> None:
    zones = {
        "left": ZoneSection(coordinates=[[0, 0], [0.5, 0], [0.5, 1], [0, 1]]),
        "floor": ZoneSection(coordinates=[[0, 200], [320, 200], [320, 240], [0, 240]],
                             labels=["person"]),
    }
    zoneset = ZoneSet(zones, 320, 240)
    assert zoneset.zones_of([10, 10, 60, 100], "car") == ["left"]
    assert zoneset.zones_of([10, 150, 60, 220], "person") == ["left", "floor"]
    assert zoneset.zones_of([10, 150, 60, 220], "car") == ["left"]     # floor counts people only
    assert zoneset.zones_of([150, 10, 200, 100], "car") == []          # bottom centre x = 175
    assert zoneset.zones_of([100, 10, 230, 100], "car") == []          # box overlaps, centre not
