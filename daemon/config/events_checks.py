"""Checks of ``events``/``zones`` settings that span several keys, reported by key path.

:func:`check_event_settings` runs with the config (no model needed);
:func:`check_labels` runs once the model's class names are known.
"""

from __future__ import annotations

from collections.abc import Sequence

from daemon.config.errors import ConfigError
from daemon.config.schema import DaemonConfig


def _key(config: DaemonConfig, index: int, label: str | None, field: str) -> str:
    """Where ``field`` of the effective events filter of ``label`` (``None``: the defaults) of
    camera ``index`` was written (the most specific place that sets it)."""
    camera = config.cameras[index]
    if label is not None:
        own = camera.events.filters.get(label)
        if own is not None and field in own.model_fields_set:
            return f"cameras[{index}].events.filters.{label}.{field}"
        top = config.events.filters.get(label)
        if top is not None and field in top.model_fields_set:
            return f"events.filters.{label}.{field}"
    if field in camera.events.model_fields_set:
        return f"cameras[{index}].events.{field}"
    return f"events.{field}"


def check_event_settings(config: DaemonConfig, name: str | None = None) -> None:
    """Score floors, area ranges and required zones of every enabled camera.

    Raises:
        ConfigError: naming the key that has to change.
    """
    for index, camera in enumerate(config.cameras):
        if not camera.enabled:
            continue
        settings = config.camera_settings(camera)
        events = settings.events
        for zone in events.required_zones:
            if zone not in settings.zones:
                known = ", ".join(settings.zones) or "none"
                where = "required_zones" in camera.events.model_fields_set
                key = f"cameras[{index}].events.required_zones" if where \
                    else "events.required_zones"
                raise ConfigError(f"zone {zone!r} is not defined for camera {camera.name!r} "
                                  f"(its zones: {known})", key=key, file=name)
        for label in [None, *events.filters]:
            flt = events.filter_for(label or "")
            if flt.min_score < config.model.min_score:
                key = _key(config, index, label, "min_score")
                raise ConfigError(
                    f"{flt.min_score} is below model.min_score ({config.model.min_score}); "
                    "detections under model.min_score never leave the worker",
                    key=key, file=name)
            same_unit = (flt.min_area <= 1.0) == (flt.max_area <= 1.0)
            if same_unit and flt.min_area > flt.max_area:
                raise ConfigError(f"min_area {flt.min_area:g} is above max_area "
                                  f"{flt.max_area:g}", key=_key(config, index, label, "min_area"),
                                  file=name)


def check_labels(config: DaemonConfig, class_names: Sequence[str], model_name: str) -> None:
    """Every label named by ``events.labels``, ``events.filters`` and zone ``labels`` (top level
    and per camera) must be a class of the model.

    Raises:
        ConfigError: naming the first unknown label's key.
    """
    known = set(class_names)
    places: list[tuple[str, Sequence[str]]] = [
        ("events.labels", config.events.labels), ("events.filters", list(config.events.filters))]
    for i, camera in enumerate(config.cameras):
        places.append((f"cameras[{i}].events.labels", camera.events.labels))
        places.append((f"cameras[{i}].events.filters", list(camera.events.filters)))
        for zone_name, zone in camera.zones.items():
            places.append((f"cameras[{i}].zones.{zone_name}.labels", zone.labels))
    for key, labels in places:
        for label in labels:
            if label not in known:
                raise ConfigError(f"{label!r} is not a class of model {model_name!r} "
                                  f"(classes: {', '.join(class_names)})", key=key)
