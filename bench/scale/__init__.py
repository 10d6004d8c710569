"""bench/scale: the whole control plane at scale with hollow nodes (see `__main__`)."""
