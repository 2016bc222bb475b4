"""Events worth reading: tracked objects reported as events that start, update and end.

- :mod:`daemon.events.stage`: the pipeline's event stage (per camera: motion gating, tracking,
  life cycle);
- :mod:`daemon.events.lifecycle`: start / update / end rules of one camera;
- :mod:`daemon.structures.messages`: the versioned JSON envelope of the event log and MQTT;
- :mod:`daemon.events.filters`: labels, scores, box areas;
- :mod:`daemon.events.gate`: when the model runs (motion, ``detect.fps``, timeouts).

Tracking itself lives in :mod:`daemon.tracking`, zones in :mod:`daemon.zones`, the motion
detector in :mod:`daemon.motion`.
"""
