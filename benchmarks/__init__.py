"""Benchmarks: our pricing against the libraries traders use, measured in the same run."""
