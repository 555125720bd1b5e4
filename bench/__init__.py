"""Benchmarks: each writes ``bench/results/<name>.json`` and prints a table."""
