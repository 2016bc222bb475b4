"""Zones: named polygons of a camera's image; events report the zones an object entered."""

from daemon.zones.polygon import PolygonError, points_in_polygon, to_pixels, validate_polygon

__all__ = ["PolygonError", "points_in_polygon", "to_pixels", "validate_polygon"]

# ZoneSet (daemon.zones.zoneset) imports the config schema, which imports this package's
# polygon module: import it from its module to keep that cycle out of package import.
