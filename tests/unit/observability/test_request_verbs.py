"""Requests are counted under kube-apiserver's verbs (LIST vs GET, WATCH, APPLY, ...)."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import make_mocked_request

from controlplane.apiserver.metrics import classify

CASES = [
    ("GET", "/api/v1/namespaces/default/configmaps", {}, "LIST", "configmaps", False),
    ("GET", "/api/v1/namespaces/default/configmaps/a", {}, "GET", "configmaps", False),
    ("GET", "/api/v1/namespaces/default/configmaps?watch=true", {}, "WATCH", "configmaps", True),
    ("POST", "/api/v1/namespaces/default/configmaps", {}, "POST", "configmaps", False),
    ("PUT", "/apis/virtualization.deckhouse.io/v1alpha2/namespaces/d/virtualmachines/vm/status", {}, "PUT",
     "virtualmachines", False),
    ("PATCH", "/api/v1/nodes/n1", {"Content-Type": "application/merge-patch+json"}, "PATCH", "nodes", False),
    ("PATCH", "/api/v1/nodes/n1", {"Content-Type": "application/apply-patch+yaml"}, "APPLY", "nodes", False),
    ("DELETE", "/api/v1/namespaces/default/configmaps", {}, "DELETECOLLECTION", "configmaps", False),
    ("DELETE", "/api/v1/namespaces/default/configmaps/a", {}, "DELETE", "configmaps", False),
    ("GET", "/apis/subresources.virtualization.deckhouse.io/v1alpha2/namespaces/d/virtualmachines/vm/console", {},
     "CONNECT", "virtualmachines", True),
    ("GET", "/version", {}, "GET", None, False),
]


@pytest.mark.parametrize(("method", "path", "headers", "verb", "resource", "longrunning"), CASES,
                         ids=[f"{c[0]} {c[1]}" for c in CASES])
def test_verbs(method: str, path: str, headers: dict[str, str], verb: str, resource: str | None,
               longrunning: bool) -> None:
    got_verb, target, got_long = classify(make_mocked_request(method, path, headers=headers))
    assert got_verb == verb
    assert (target.plural if target else None) == resource
    assert got_long == longrunning


@pytest.mark.parametrize(("path", "handler"), [
    ("/v2/", "base"), ("/v2", "base"), ("/v2/_catalog", "catalog"), ("/v2/cvi/ubuntu/tags/list", "tags"),
    ("/v2/cvi/ubuntu/manifests/latest", "manifest"), ("/v2/cvi/ubuntu/blobs/sha256:abc", "blob"),
    ("/v2/cvi/ubuntu/blobs/uploads/", "blob_upload"), ("/v2/cvi/ubuntu/blobs/uploads/0a1b", "blob_upload_chunk"),
    ("/healthz", "other")])
def test_dvcr_handlers_as_distribution_names_them(path: str, handler: str) -> None:
    from controlplane.dvcr.metrics import handler_name

    assert handler_name(path) == handler
