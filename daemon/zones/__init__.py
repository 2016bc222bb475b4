"""Zones: named polygons of a camera's image; events report the zones an object entered.

The polygon geometry (validation, point-in-polygon) is in :mod:`daemon.structures.polygon`,
which the config schema also uses; :class:`~daemon.zones.zoneset.ZoneSet` is here.
"""

from daemon.zones.zoneset import ZoneSet

__all__ = ["ZoneSet"]
