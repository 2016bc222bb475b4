"""Benchmark scripts (run with ``python -m benchmarks.run_benchmarks``)."""
