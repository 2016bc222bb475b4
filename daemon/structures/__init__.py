"""The daemon's shared data types, one home for what the stages hand each other.

- :mod:`~daemon.structures.frame`: ``Captured`` (a source's read) and ``Frame`` (the pipeline's
  unit);
- :mod:`~daemon.structures.results`: ``FrameResult`` and ``ModelInfo`` (what every sink gets);
- :mod:`~daemon.structures.messages`: ``EventMessage``, the versioned event envelope;
- :mod:`~daemon.structures.snapshot`: ``BestShot`` and ``SnapshotJob``;
- :mod:`~daemon.structures.metrics` and :mod:`~daemon.structures.faults`: ``Metrics`` and
  ``FaultStats``, shared by every stage;
- :mod:`~daemon.structures.polygon`: zone polygon geometry (used by the config schema too).

Nothing here imports a stage (sources, pipeline, events, sinks, service, ...): see
docs/architecture.md.
"""
