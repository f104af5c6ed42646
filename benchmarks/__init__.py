"""Benchmarks: one script per performance claim; `make bench` runs them all."""
