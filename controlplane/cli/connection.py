"""How `dvp v` reaches the platform: the kubeconfig's server, CA and token (like kubectl)."""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass
from pathlib import Path

import click

from controlplane.common.kubeconfig import KubeconfigError, read_kubeconfig

SUBRESOURCES = "/apis/subresources.virtualization.deckhouse.io/v1alpha2"


@dataclass
class Connection:
    server: str
    token: str
    ssl: ssl.SSLContext
    namespace: str

    @classmethod
    def load(cls, kubeconfig: str | None, namespace: str | None) -> Connection:
        path = Path(kubeconfig or os.environ.get("KUBECONFIG") or Path.home() / ".kube" / "config")
        try:
            doc = read_kubeconfig(path)
        except KubeconfigError as exc:
            raise click.ClickException(str(exc)) from None
        ctx = ssl.create_default_context(cadata=doc["ca_pem"].decode())
        return cls(doc["server"].rstrip("/"), doc["token"], ctx, namespace or doc["namespace"])

    def stream_url(self, name: str, stream: str) -> str:
        base = self.server.replace("https://", "wss://", 1)
        return f"{base}{SUBRESOURCES}/namespaces/{self.namespace}/virtualmachines/{name}/{stream}"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}
