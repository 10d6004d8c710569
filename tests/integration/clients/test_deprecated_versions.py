"""A deprecated version warns as kube-apiserver makes it warn: VirtualMachineClass v1alpha2
(DVP's deprecated storage version) answers every request with
`Warning: 299 - "<deprecationWarning>"`, which kubectl 1.33 prints on stderr for get, apply
and delete; v1alpha3 and other kinds carry no such warning."""

from __future__ import annotations

import ssl
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.integration.clients.conftest import Kubectl
from tests.services.apiserver import ApiServerProcess

pytestmark = pytest.mark.integration
DOCS = Path(__file__).resolve().parents[2] / "fixtures" / "dvp_docs"
GROUP = "virtualization.deckhouse.io"
TEXT = f"{GROUP}/v1alpha2 VirtualMachineClass is deprecated; use {GROUP}/v1alpha3 VirtualMachineClass"


def test_kubectl_shows_the_warning_for_v1alpha2_only(k33: Kubectl) -> None:
    applied = k33.run("apply", "-f", str(DOCS / "vmclass-v1alpha2-standard.yaml"))
    assert f"Warning: {TEXT}" in applied.stderr
    got = k33.run("get", f"virtualmachineclasses.v1alpha2.{GROUP}", "standard", "-o", "name")
    assert f"Warning: {TEXT}" in got.stderr and got.stdout.strip()
    listed = k33.run("get", f"virtualmachineclasses.v1alpha2.{GROUP}")
    assert f"Warning: {TEXT}" in listed.stderr
    for quiet in (k33.run("get", f"virtualmachineclasses.v1alpha3.{GROUP}", "standard"),
                  k33.run("get", "namespaces")):
        assert "deprecated" not in quiet.stderr
    deleted = k33.run("delete", f"virtualmachineclasses.v1alpha2.{GROUP}", "standard")
    assert f"Warning: {TEXT}" in deleted.stderr


def test_every_answer_for_v1alpha2_carries_the_header(server: ApiServerProcess) -> None:
    header = f'299 - "{TEXT}"'
    base = f"/apis/{GROUP}/v1alpha2/virtualmachineclasses"
    ctx = ssl.create_default_context(cafile=str(server.ca_file))
    for path, code in ((base, 200), (f"{base}/missing", 404), (f"{base}?watch=true&timeoutSeconds=1", 200)):
        req = urllib.request.Request(server.url + path, headers={"Authorization": f"Bearer {server.token}"})
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=30) as resp:
                status, warnings = resp.status, resp.headers.get_all("Warning") or []
                resp.read()
        except urllib.error.HTTPError as exc:
            status, warnings = exc.code, exc.headers.get_all("Warning") or []
        assert (status, warnings) == (code, [header]), path
    req = urllib.request.Request(server.url + base.replace("v1alpha2", "v1alpha3"),
                                 headers={"Authorization": f"Bearer {server.token}"})
    with urllib.request.urlopen(req, context=ctx, timeout=30) as resp:
        assert resp.headers.get_all("Warning") is None
