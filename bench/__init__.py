"""Benchmarks: `python -m bench.<name>`; each prints its own figure, a named peer's figure
measured in the same run, and the ratio."""
