"""Benchmarks: each measures fastdeit against its peers on the same input and prints a side-by-side table."""
