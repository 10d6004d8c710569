"""The virtualization.deckhouse.io API: CRD manifests and typed helpers (phases, conditions)."""
