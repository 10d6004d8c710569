"""A KubeClient for short checks: no urllib3 retries, so an API that is down answers at once
(the official client's default retries turn one refused connection into seconds of waiting).
Used by `dvp version --cluster` and `dvp upgrade`'s preflight and health checks."""

from __future__ import annotations

from pathlib import Path

from kubernetes import client as k8s

from controlplane.common.kube.client import KubeClient
from controlplane.common.kube.configuration import load_configuration


def quick_client(kubeconfig: Path | str, *, user_agent: str = "dvp") -> KubeClient:
    configuration = load_configuration(kubeconfig)
    configuration.retries = 0
    return KubeClient(k8s.ApiClient(configuration), user_agent=user_agent)
