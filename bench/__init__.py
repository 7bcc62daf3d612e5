"""Benchmarks: each module prints figures and a baseline measured in the same run."""
