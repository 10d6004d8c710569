"""Garbage collection through `dvp dvcr gc` against a real DVCR: it removes exactly the
unreferenced content, keeps everything referenced, and the dry run removes nothing."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from tests.integration.dvcr.helpers import OCI_INDEX, OCI_MANIFEST, Api, sha256
from tests.services.dvcr import DvcrProcess

pytestmark = pytest.mark.integration


def tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in root.rglob("*") if p.is_file() and "upload-tickets" not in p.parts}


def blobs_on_disk(root: Path) -> set[str]:
    return {f"sha256:{p.parent.name}" for p in (root / "blobs").rglob("data")}


def test_gc_removes_exactly_the_unreferenced(fresh_dvcr: DvcrProcess) -> None:
    dvcr = fresh_dvcr
    api = Api(dvcr.url, dvcr.ca_file, dvcr.creds("admin"))
    shared = os.urandom(1000)
    # kept: a tagged image
    m1, d1 = api.push_image("gc/a", "v1", [shared, os.urandom(500)])
    kept = {m1, d1["config"]["digest"], *(x["digest"] for x in d1["layers"])}
    # removed: an image pushed by digest only (its layer `shared` stays: m1 uses it)
    m2, d2 = api.push_image("gc/a", "scratch", [shared, os.urandom(700)])
    api("DELETE", "/v2/gc/a/manifests/scratch")
    removed = {m2, d2["layers"][1]["digest"]}
    assert d2["config"]["digest"] == d1["config"]["digest"]  # identical config: shared, kept
    # kept: a tagged index, its child (pushed by digest) and an artifact referring to the child
    m3, d3 = api.push_image("gc/b", "child", [os.urandom(300)])
    api("DELETE", "/v2/gc/b/manifests/child")  # untag: reachable only through the index now
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX,
             "manifests": [{"mediaType": OCI_MANIFEST, "digest": m3, "size": len(json.dumps(d3).encode())}]}
    mi = api.push_manifest("gc/b", "multi", index, OCI_INDEX)
    empty = api.push_blob("gc/b", b"{}")
    sig = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/vnd.example.sig",
           "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
           "layers": [{"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2}],
           "subject": {"mediaType": OCI_MANIFEST, "digest": m3, "size": len(json.dumps(d3).encode())}}
    ms = sha256(json.dumps(sig).encode())
    api.push_manifest("gc/b", ms, sig)
    kept |= {m3, d3["config"]["digest"], d3["layers"][0]["digest"], mi, empty, ms}
    # removed: an orphan blob, and a whole repository whose only tag was deleted
    removed.add(api.push_blob("gc/c", os.urandom(2000)))
    m4, d4 = api.push_image("gc/d", "v1", [os.urandom(400)])
    api("DELETE", "/v2/gc/d/manifests/v1")
    removed |= {m4, d4["layers"][0]["digest"]}
    assert blobs_on_disk(dvcr.storage) == kept | removed

    before = tree(dvcr.storage)
    dry = json.loads(dvcr.dvp("gc", "--dry-run", "-o", "json").stdout)
    assert tree(dvcr.storage) == before, "the dry run removes nothing"
    assert dry["dryRun"] is True
    assert {b["digest"] for b in dry["blobs"]} == removed
    assert {(m["repository"], m["digest"]) for m in dry["manifests"]} == {("gc/a", m2), ("gc/d", m4)}
    assert dry["repositories"] == ["gc/c", "gc/d"]

    done = json.loads(dvcr.dvp("gc", "-o", "json").stdout)
    assert done["dryRun"] is False
    assert {b["digest"] for b in done["blobs"]} == removed
    assert done["freedBytes"] == sum(b["size"] for b in dry["blobs"])
    assert blobs_on_disk(dvcr.storage) == kept
    catalog = api("GET", "/v2/_catalog").json()["repositories"]
    assert catalog == ["gc/a", "gc/b"]
    for repo, ref in [("gc/a", "v1"), ("gc/b", "multi"), ("gc/b", m3), ("gc/b", ms)]:
        r = api("GET", f"/v2/{repo}/manifests/{ref}")
        assert r.status_code == 200, (repo, ref)
        for desc in [r.json().get("config"), *r.json().get("layers", [])]:
            if desc:
                assert api("GET", f"/v2/{repo}/blobs/{desc['digest']}").status_code == 200
    assert api("GET", f"/v2/gc/b/referrers/{m3}").json()["manifests"][0]["digest"] == ms
    assert api("GET", f"/v2/gc/a/manifests/{m2}").status_code == 404
    again = json.loads(dvcr.dvp("gc", "-o", "json").stdout)
    assert again["blobs"] == [] and again["manifests"] == []


def test_gc_keeps_a_blob_pushed_for_a_manifest_not_yet_put(dvcr: DvcrProcess, api: Api) -> None:
    """A push in progress: its blobs are in, its manifest not yet. GC (default grace) must not
    take the blobs away, and the manifest put afterwards succeeds."""
    layer, config = os.urandom(3000), b'{"architecture":"amd64","os":"linux"}'
    ld, cd = api.push_blob("gc/inflight", layer), api.push_blob("gc/inflight", config)
    report = json.loads(dvcr.dvp("gc", "-o", "json").stdout)
    assert ld not in {b["digest"] for b in report["blobs"]}
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": len(config)},
           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld, "size": len(layer)}]}
    api.push_manifest("gc/inflight", "v1", doc)
    assert api("GET", f"/v2/gc/inflight/blobs/{ld}").content == layer


def test_gc_needs_the_admin_and_prints_a_table(dvcr: DvcrProcess) -> None:
    node = Api(dvcr.url, dvcr.ca_file, dvcr.creds("node"))
    assert node("POST", "/dvcr/v1/gc").status_code == 403
    out = dvcr.dvp("gc", "--dry-run")
    assert "would remove" in out.stdout


def test_gc_grace_seconds_from_the_admin_api(tmp_path: Path) -> None:
    """What the controllers do after deleting an image while nothing is pushing: GC with a
    grace of 0 takes the just-pushed, now unreferenced blobs at once (the server's own grace
    keeps them); a bad value is refused."""
    dvcr = DvcrProcess(tmp_path / "data", extra_args=["--gc-grace", "3600"])
    dvcr.start()
    try:
        _grace_from_the_api(dvcr)
    finally:
        dvcr.stop()


def _grace_from_the_api(dvcr: DvcrProcess) -> None:
    admin = Api(dvcr.url, dvcr.ca_file, dvcr.creds("admin"))
    m, d = admin.push_image("gc/young", "v1", [os.urandom(800)])
    admin("DELETE", f"/v2/gc/young/manifests/{m}")
    bad = admin("POST", "/dvcr/v1/gc?dryRun=false&graceSeconds=-1")
    assert bad.status_code == 400 and "graceSeconds" in bad.text
    kept = admin("POST", "/dvcr/v1/gc?dryRun=false").json()
    assert d["layers"][0]["digest"] in blobs_on_disk(dvcr.storage) and kept["blobs"] == []
    gone = admin("POST", "/dvcr/v1/gc?dryRun=false&graceSeconds=0").json()
    assert d["layers"][0]["digest"] in {b["digest"] for b in gone["blobs"]}
    assert d["layers"][0]["digest"] not in blobs_on_disk(dvcr.storage)
