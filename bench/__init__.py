"""Benchmarks of the service against the real stack, with same-run baselines (`make bench`, `make bench-smoke`)."""
