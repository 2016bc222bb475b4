"""Performance tooling: full-width models with synthetic weights for benchmarks."""
