"""The shared client-side runtime every component uses against a Kubernetes API: a dict-based
client over the official `kubernetes` package, informers (list+watch caches), a rate-limited
work queue, a controller loop, an event recorder and Lease-based leader election."""

from controlplane.common.kube.client import KubeClient, KubeError, Resource

__all__ = ["KubeClient", "KubeError", "Resource"]
