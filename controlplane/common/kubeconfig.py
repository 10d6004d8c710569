"""Kubeconfig files: written by `dvp server` for its admin and agents, read by every component.

Controllers, DVCR and node handlers reach the API only through a kubeconfig, so the same
code runs against the embedded server and against DKP's kube-apiserver.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import yaml

from controlplane.common.pki import write_private_file


def render_kubeconfig(*, server: str, ca_pem: bytes, token: str = "", user: str = "admin",
                      cluster: str = "dvp", namespace: str = "default", client_cert_pem: bytes = b"",
                      client_key_pem: bytes = b"") -> dict[str, Any]:
    """A kubeconfig with a bearer token, or with a client certificate and its key (embedded as data)."""
    context = f"{user}@{cluster}"
    credentials: dict[str, str] = {"token": token}
    if client_cert_pem:
        credentials = {"client-certificate-data": base64.b64encode(client_cert_pem).decode(),
                       "client-key-data": base64.b64encode(client_key_pem).decode()}
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{
            "name": cluster,
            "cluster": {
                "server": server,
                "certificate-authority-data": base64.b64encode(ca_pem).decode(),
            },
        }],
        "users": [{"name": user, "user": credentials}],
        "contexts": [{"name": context, "context": {"cluster": cluster, "user": user, "namespace": namespace}}],
        "current-context": context,
        "preferences": {},
    }


def write_kubeconfig(path: Path, **kwargs: Any) -> Path:
    """Write a kubeconfig readable by its owner only (it holds a bearer token or a private key)."""
    doc = render_kubeconfig(**kwargs)
    write_private_file(path, yaml.safe_dump(doc, sort_keys=False).encode())
    return path


class KubeconfigError(ValueError):
    """A kubeconfig that cannot be used: its path and why, never its content (it holds a token)."""


def read_kubeconfig(path: Path) -> dict[str, Any]:
    """The current context's server, CA (PEM bytes) and token from a kubeconfig file;
    KubeconfigError naming the file and what is wrong with it."""
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise unreadable(path, exc) from None
    if not isinstance(doc, dict):
        raise KubeconfigError(f"kubeconfig {path}: not a usable kubeconfig (empty, or not a mapping)")
    try:
        ctx_name = doc.get("current-context")
        ctx = next(c["context"] for c in doc["contexts"] if c["name"] == ctx_name)
        cluster = next(c["cluster"] for c in doc["clusters"] if c["name"] == ctx["cluster"])
        user = next(u["user"] for u in doc["users"] if u["name"] == ctx["user"])
        ca = base64.b64decode(cluster["certificate-authority-data"]) if "certificate-authority-data" in cluster \
            else Path(cluster["certificate-authority"]).read_bytes()
        return {"server": cluster["server"], "ca_pem": ca, "token": user.get("token", ""),
                "namespace": ctx.get("namespace", "default")}
    except KeyError as exc:
        raise KubeconfigError(f"kubeconfig {path}: not a usable kubeconfig (no {exc.args[0]!r})") from None
    except StopIteration:
        raise KubeconfigError(f"kubeconfig {path}: its current-context, or the cluster or user that context "
                              "names, is not in the file") from None
    except (AttributeError, TypeError, ValueError, OSError) as exc:
        raise KubeconfigError(f"kubeconfig {path}: not a usable kubeconfig ({type(exc).__name__})") from None


def unreadable(path: Path | str, exc: OSError | yaml.YAMLError) -> KubeconfigError:
    """The error for a kubeconfig that cannot be read or is not YAML: where and what, without the
    snippet of the line PyYAML adds to its own text (a kubeconfig's line may hold a token)."""
    if isinstance(exc, OSError):
        return KubeconfigError(f"kubeconfig {path}: {exc.strerror or exc}")
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or ""
    where = f" at line {mark.line + 1}, column {mark.column + 1}: {problem}" if mark else ""
    return KubeconfigError(f"kubeconfig {path}: not YAML{where}")
