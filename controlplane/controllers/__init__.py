"""Controllers: one level-triggered reconciler per kind, on a small shared runtime."""
