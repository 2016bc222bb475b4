"""Performance measurement: CPU peak, matmul rate, FLOP counting."""
