"""Tests of the benchmarks' pure parts: verdicts, goals, the idle window."""
