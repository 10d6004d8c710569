"""Test infrastructure shared by tests and benchmarks (real services started and stopped by PID)."""
