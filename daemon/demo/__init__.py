"""Synthetic scenes of moving shapes for the demo, the tests and the benchmarks."""
