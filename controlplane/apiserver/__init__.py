"""The Kubernetes-compatible API server of the embedded target (`dvp server`)."""
