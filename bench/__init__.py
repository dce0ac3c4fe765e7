"""Benchmarks: each prints its result as a ratio against a baseline measured in the same run."""
