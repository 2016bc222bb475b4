"""A camera's zones at its frame size: which zones a box is in.

An object is in a zone when the bottom centre of its box (where it stands) lies inside the
polygon; a zone with ``labels`` counts only those labels.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np

from daemon.config.events_schema import ZoneSection
from daemon.structures.polygon import is_fractional, points_in_polygon, to_pixels

log = logging.getLogger(__name__)


class ZoneSet:
    """Zones in pixels of a ``width x height`` image, in configuration order."""

    def __init__(self, zones: Mapping[str, ZoneSection], width: int, height: int,
                 camera: str = "") -> None:
        self.names = list(zones)
        self.polygons = [to_pixels(z.coordinates, width, height) for z in zones.values()]
        self.labels = [set(z.labels) for z in zones.values()]
        for name, zone, polygon in zip(self.names, zones.values(), self.polygons, strict=True):
            if not is_fractional(zone.coordinates) and (
                    polygon[:, 0].max() > width or polygon[:, 1].max() > height):
                log.warning("camera %r: zone %r reaches beyond the %dx%d image", camera, name,
                            width, height)

    def __len__(self) -> int:
        return len(self.names)

    def zones_of(self, box: Sequence[float], label: str) -> list[str]:
        """Names of the zones (configuration order) that hold the bottom centre of ``box``
        ``[x0, y0, x1, y1]`` and count ``label``."""
        if not self.names:
            return []
        point = np.array([[(box[0] + box[2]) / 2.0, box[3]]])
        return [name for name, polygon, labels in zip(self.names, self.polygons, self.labels,
                                                      strict=True)
                if (not labels or label in labels) and bool(points_in_polygon(point, polygon)[0])]
