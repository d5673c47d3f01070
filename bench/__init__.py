"""Benchmarks: `python -m bench` prints the table the README carries."""
