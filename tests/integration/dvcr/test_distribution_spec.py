"""One test per OCI Distribution v1.1 requirement DVCR implements (pull, push, content
discovery, content management), against a real `dvp dvcr serve` over HTTPS."""

from __future__ import annotations

import json
import os
import uuid

import pytest

from tests.integration.dvcr.helpers import DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, Api, sha256
from tests.services.dvcr import DvcrProcess

pytestmark = pytest.mark.integration


def repo_name(prefix: str = "spec") -> str:
    return f"{prefix}/r{uuid.uuid4().hex[:10]}"


# --- authentication -----------------------------------------------------------------------------
def test_base_endpoint_needs_credentials(dvcr: DvcrProcess, api: Api) -> None:
    anon = Api(dvcr.url, dvcr.ca_file, None)
    r = anon("GET", "/v2/")
    assert r.status_code == 401
    challenges = r.raw.headers.getlist("WWW-Authenticate")
    assert challenges[0] == f'Bearer realm="{dvcr.url}/auth/token",service="dvcr"'
    assert challenges[1] == 'Basic realm="dvcr"'
    assert Api.error_code(r) == "UNAUTHORIZED"
    assert anon("GET", "/auth/token").status_code == 401
    token = api("GET", "/auth/token", params={"service": "dvcr", "scope": "repository:x:pull"}).json()["token"]
    assert Api(dvcr.url, dvcr.ca_file, None)("GET", "/v2/", headers={"Authorization": f"Bearer {token}"}
                                             ).status_code == 200
    assert anon("GET", "/v2/", headers={"Authorization": "Bearer dvcr.forged"}).status_code == 401
    assert anon("GET", "/v2/_catalog").status_code == 401
    ok = api("GET", "/v2/")
    assert ok.status_code == 200 and ok.headers["Docker-Distribution-API-Version"] == "registry/2.0"


def test_wrong_password_is_refused(dvcr: DvcrProcess) -> None:
    user, _ = dvcr.creds("importer")
    r = Api(dvcr.url, dvcr.ca_file, (user, "not-the-password"))("GET", "/v2/")
    assert r.status_code == 401 and Api.error_code(r) == "UNAUTHORIZED"
    assert "not-the-password" not in r.text


def test_node_user_may_pull_but_not_push(dvcr: DvcrProcess, api: Api) -> None:
    repo = repo_name()
    digest, _ = api.push_image(repo, "v1", [b"layer"])
    node = Api(dvcr.url, dvcr.ca_file, dvcr.creds("node"))
    assert node("GET", f"/v2/{repo}/manifests/v1").status_code == 200
    r = node("POST", f"/v2/{repo}/blobs/uploads/")
    assert r.status_code == 403 and Api.error_code(r) == "DENIED"
    assert node("DELETE", f"/v2/{repo}/manifests/{digest}").status_code == 403


# --- pull --------------------------------------------------------------------------------------
def test_pull_manifest_by_tag_and_by_digest(api: Api) -> None:
    repo = repo_name()
    digest, doc = api.push_image(repo, "v1", [b"hello"])
    for ref in ("v1", digest):
        r = api("GET", f"/v2/{repo}/manifests/{ref}", headers={"Accept": OCI_MANIFEST})
        assert r.status_code == 200
        assert r.headers["Content-Type"] == OCI_MANIFEST
        assert r.headers["Docker-Content-Digest"] == digest == sha256(r.content)
        assert json.loads(r.content) == doc
        h = api("HEAD", f"/v2/{repo}/manifests/{ref}")
        assert h.status_code == 200 and int(h.headers["Content-Length"]) == len(r.content) and not h.content


def test_pull_blob_whole_head_and_ranges(api: Api) -> None:
    repo = repo_name()
    data = os.urandom(100_000)
    d = api.push_blob(repo, data)
    r = api("GET", f"/v2/{repo}/blobs/{d}")
    assert r.status_code == 200 and r.content == data and r.headers["Docker-Content-Digest"] == d
    h = api("HEAD", f"/v2/{repo}/blobs/{d}")
    assert h.status_code == 200 and h.headers["Content-Length"] == str(len(data)) and not h.content
    r = api("GET", f"/v2/{repo}/blobs/{d}", headers={"Range": "bytes=10-19"})
    assert r.status_code == 206 and r.content == data[10:20]
    assert r.headers["Content-Range"] == f"bytes 10-19/{len(data)}"
    assert api("GET", f"/v2/{repo}/blobs/{d}", headers={"Range": "bytes=-5"}).content == data[-5:]
    assert api("GET", f"/v2/{repo}/blobs/{d}", headers={"Range": "bytes=99990-"}).content == data[99990:]
    r = api("GET", f"/v2/{repo}/blobs/{d}", headers={"Range": "bytes=200000-"})
    assert r.status_code == 416 and r.headers["Content-Range"] == f"bytes */{len(data)}"


def test_unknown_blob(api: Api) -> None:
    repo = repo_name()
    api.push_image(repo, "v1", [b"x"])
    r = api("GET", f"/v2/{repo}/blobs/{sha256(b'never pushed')}")
    assert r.status_code == 404 and Api.error_code(r) == "BLOB_UNKNOWN"
    assert api("HEAD", f"/v2/{repo}/blobs/{sha256(b'never pushed')}").status_code == 404


def test_blob_is_served_only_by_repositories_it_was_pushed_to(api: Api) -> None:
    a, b = repo_name(), repo_name()
    d = api.push_blob(a, b"private to a")
    api.push_image(b, "v1", [b"something else"])
    assert api("GET", f"/v2/{a}/blobs/{d}").status_code == 200
    assert api("GET", f"/v2/{b}/blobs/{d}").status_code == 404


@pytest.mark.parametrize("ref", ["nosuchtag", "sha256:" + "0" * 64], ids=["tag", "digest"])
def test_unknown_manifest(api: Api, ref: str) -> None:
    repo = repo_name()
    api.push_image(repo, "v1", [b"x"])
    r = api("GET", f"/v2/{repo}/manifests/{ref}")
    assert r.status_code == 404 and Api.error_code(r) == "MANIFEST_UNKNOWN"


def test_invalid_names_and_digests(api: Api) -> None:
    r = api("GET", "/v2/Upper/Case/manifests/latest")
    assert r.status_code == 400 and Api.error_code(r) == "NAME_INVALID"
    r = api("GET", "/v2/ok/repo/blobs/sha256:abc")
    assert r.status_code == 400 and Api.error_code(r) == "DIGEST_INVALID"
    r = api("GET", "/v2/ok/repo/blobs/md5:" + "0" * 32)
    assert r.status_code == 400 and Api.error_code(r) == "DIGEST_INVALID"


# --- push --------------------------------------------------------------------------------------
def test_monolithic_upload_with_post_and_with_post_put(api: Api) -> None:
    repo = repo_name()
    data = b"monolithic"
    r = api("POST", f"/v2/{repo}/blobs/uploads/", params={"digest": sha256(data)}, data=data)
    assert r.status_code == 201 and r.headers["Location"] == f"/v2/{repo}/blobs/{sha256(data)}"
    data2 = b"post then put"
    r = api("POST", f"/v2/{repo}/blobs/uploads/")
    assert r.status_code == 202 and r.headers["Location"].startswith(f"/v2/{repo}/blobs/uploads/")
    r = api("PUT", r.headers["Location"], params={"digest": sha256(data2)}, data=data2)
    assert r.status_code == 201 and r.headers["Docker-Content-Digest"] == sha256(data2)
    assert api("GET", f"/v2/{repo}/blobs/{sha256(data2)}").content == data2


def test_chunked_upload_with_status(api: Api) -> None:
    repo = repo_name()
    data = os.urandom(300_000)
    loc = api("POST", f"/v2/{repo}/blobs/uploads/").headers["Location"]
    r = api("PATCH", loc, data=data[:100_000], headers={"Content-Range": "0-99999",
                                                        "Content-Type": "application/octet-stream"})
    assert r.status_code == 202 and r.headers["Range"] == "0-99999"
    status = api("GET", r.headers["Location"])
    assert status.status_code == 204 and status.headers["Range"] == "0-99999"
    r = api("PATCH", r.headers["Location"], data=data[100_000:250_000], headers={"Content-Range": "100000-249999"})
    assert r.status_code == 202 and r.headers["Range"] == "0-249999"
    r = api("PUT", r.headers["Location"], params={"digest": sha256(data)}, data=data[250_000:],
            headers={"Content-Range": "250000-299999"})
    assert r.status_code == 201
    assert api("GET", f"/v2/{repo}/blobs/{sha256(data)}").content == data


def test_chunk_out_of_order_is_416(api: Api) -> None:
    repo = repo_name()
    loc = api("POST", f"/v2/{repo}/blobs/uploads/").headers["Location"]
    assert api("PATCH", loc, data=b"a" * 10, headers={"Content-Range": "0-9"}).status_code == 202
    r = api("PATCH", loc, data=b"c" * 10, headers={"Content-Range": "20-29"})
    assert r.status_code == 416
    assert r.headers["Range"] == "0-9"
    r = api("PATCH", loc, data=b"b" * 10, headers={"Content-Range": "10-19"})
    assert r.status_code == 202 and r.headers["Range"] == "0-19"


def test_bad_digest_is_refused_and_nothing_is_stored(dvcr: DvcrProcess, api: Api) -> None:
    repo = repo_name()
    data = os.urandom(1000)
    claimed = sha256(os.urandom(1000))
    r = api("POST", f"/v2/{repo}/blobs/uploads/", params={"digest": claimed}, data=data)
    assert r.status_code == 400 and Api.error_code(r) == "DIGEST_INVALID"
    loc = api("POST", f"/v2/{repo}/blobs/uploads/").headers["Location"]
    r = api("PUT", loc, params={"digest": claimed}, data=data)
    assert r.status_code == 400 and Api.error_code(r) == "DIGEST_INVALID"
    for d in (claimed, sha256(data)):
        assert api("HEAD", f"/v2/{repo}/blobs/{d}").status_code == 404
        assert not (dvcr.storage / "blobs" / "sha256" / d[7:9] / d[7:]).exists()


def test_cancelled_upload_is_gone(api: Api) -> None:
    repo = repo_name()
    loc = api("POST", f"/v2/{repo}/blobs/uploads/").headers["Location"]
    api("PATCH", loc, data=b"partial")
    assert api("DELETE", loc).status_code == 204
    r = api("GET", loc)
    assert r.status_code == 404 and Api.error_code(r) == "BLOB_UPLOAD_UNKNOWN"
    assert api("PATCH", loc, data=b"more").status_code == 404


def test_cross_repository_mount(api: Api) -> None:
    src, dst = repo_name(), repo_name()
    d = api.push_blob(src, b"shared layer")
    r = api("POST", f"/v2/{dst}/blobs/uploads/", params={"mount": d, "from": src})
    assert r.status_code == 201 and r.headers["Location"] == f"/v2/{dst}/blobs/{d}"
    assert api("GET", f"/v2/{dst}/blobs/{d}").content == b"shared layer"
    missing = sha256(b"nowhere")
    r = api("POST", f"/v2/{dst}/blobs/uploads/", params={"mount": missing, "from": src})
    assert r.status_code == 202 and "/blobs/uploads/" in r.headers["Location"]  # falls back to an upload


def test_manifest_with_missing_blob_is_refused(api: Api) -> None:
    repo = repo_name()
    config = api.push_blob(repo, b"{}")
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 2},
           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha256(b"absent"),
                       "size": 6}]}
    r = api("PUT", f"/v2/{repo}/manifests/v1", data=json.dumps(doc), headers={"Content-Type": OCI_MANIFEST})
    assert r.status_code == 400 and Api.error_code(r) == "MANIFEST_BLOB_UNKNOWN"
    assert sha256(b"absent") in r.text
    assert api("GET", f"/v2/{repo}/manifests/v1").status_code == 404


@pytest.mark.parametrize("media_type", [OCI_MANIFEST, DOCKER_MANIFEST], ids=["oci", "docker-v2"])
def test_image_manifest_types(api: Api, media_type: str) -> None:
    repo = repo_name()
    digest, _ = api.push_image(repo, "v1", [b"layer one", b"layer two"], media_type=media_type)
    r = api("GET", f"/v2/{repo}/manifests/v1")
    assert r.headers["Content-Type"] == media_type and sha256(r.content) == digest


@pytest.mark.parametrize("media_type", [OCI_INDEX, DOCKER_LIST], ids=["oci-index", "docker-list"])
def test_index_manifest_types_need_their_children(api: Api, media_type: str) -> None:
    repo = repo_name()
    child_type = OCI_MANIFEST if media_type == OCI_INDEX else DOCKER_MANIFEST
    child, doc = api.push_image(repo, "child", [b"amd64 layer"], media_type=child_type)
    size = len(json.dumps(doc).encode())
    index = {"schemaVersion": 2, "mediaType": media_type, "manifests": [
        {"mediaType": child_type, "digest": child, "size": size, "platform": {"os": "linux", "architecture": "amd64"}}]}
    digest = api.push_manifest(repo, "multi", index, media_type)
    r = api("GET", f"/v2/{repo}/manifests/multi")
    assert r.headers["Content-Type"] == media_type and sha256(r.content) == digest
    index["manifests"][0]["digest"] = sha256(b"no such manifest")  # type: ignore[index]
    r = api("PUT", f"/v2/{repo}/manifests/broken", data=json.dumps(index), headers={"Content-Type": media_type})
    assert r.status_code == 400 and Api.error_code(r) == "MANIFEST_BLOB_UNKNOWN"


def test_manifest_put_by_digest_must_match_its_body(api: Api) -> None:
    repo = repo_name()
    _, doc = api.push_image(repo, "v1", [b"x"])
    body = json.dumps(doc).encode()
    r = api("PUT", f"/v2/{repo}/manifests/{sha256(body + b' ')}", data=body, headers={"Content-Type": OCI_MANIFEST})
    assert r.status_code == 400 and Api.error_code(r) == "DIGEST_INVALID"
    r = api("PUT", f"/v2/{repo}/manifests/{sha256(body)}", data=body, headers={"Content-Type": OCI_MANIFEST})
    assert r.status_code == 201


@pytest.mark.parametrize("body,field", [
    (b"not json", ""),
    (b'{"schemaVersion": 1}', "schemaVersion"),
    (b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "layers": []}', "config"),
    (b'{"schemaVersion": 2, "config": {"mediaType": "a", "digest": "sha256:00", "size": 1}, "layers": []}',
     "config.digest"),
], ids=["not-json", "schema1", "no-config", "bad-digest"])
def test_invalid_manifest_names_the_field(api: Api, body: bytes, field: str) -> None:
    r = api("PUT", f"/v2/{repo_name()}/manifests/v1", data=body, headers={"Content-Type": OCI_MANIFEST})
    assert r.status_code == 400 and Api.error_code(r) == "MANIFEST_INVALID"
    assert field in r.json()["errors"][0]["message"]


# --- content discovery ---------------------------------------------------------------------------
def test_tag_list_with_pagination(api: Api) -> None:
    repo = repo_name()
    _, doc = api.push_image(repo, "t0", [b"x"])
    tags = [f"t{i}" for i in range(7)]
    for t in tags[1:]:
        api.push_manifest(repo, t, doc)
    r = api("GET", f"/v2/{repo}/tags/list")
    assert r.json() == {"name": repo, "tags": tags}
    r = api("GET", f"/v2/{repo}/tags/list", params={"n": 3})
    assert r.json()["tags"] == tags[:3]
    assert r.headers["Link"] == f'</v2/{repo}/tags/list?n=3&last=t2>; rel="next"'
    r = api("GET", f"/v2/{repo}/tags/list", params={"n": 3, "last": "t2"})
    assert r.json()["tags"] == tags[3:6]
    r = api("GET", f"/v2/{repo}/tags/list", params={"n": 3, "last": "t5"})
    assert r.json()["tags"] == ["t6"] and "Link" not in r.headers
    assert api("GET", f"/v2/{repo}/tags/list", params={"n": 0}).json()["tags"] == []


def test_tags_of_unknown_repository(api: Api) -> None:
    r = api("GET", f"/v2/{repo_name('nothing')}/tags/list")
    assert r.status_code == 404 and Api.error_code(r) == "NAME_UNKNOWN"


def test_catalog_with_pagination(api: Api) -> None:
    prefix = f"cat{uuid.uuid4().hex[:6]}"
    names = [f"{prefix}/a", f"{prefix}/b", f"{prefix}/b/c"]
    for n in names:
        api.push_image(n, "v1", [b"x"])
    everything = api("GET", "/v2/_catalog").json()["repositories"]
    assert [n for n in everything if n.startswith(prefix)] == names
    r = api("GET", "/v2/_catalog", params={"n": 2, "last": f"{prefix}/"})
    assert r.json()["repositories"] == names[:2] and 'rel="next"' in r.headers["Link"]


def test_referrers_with_artifact_type_filter(api: Api) -> None:
    repo = repo_name()
    subject, doc = api.push_image(repo, "v1", [b"disk"])
    size = len(json.dumps(doc).encode())
    empty = api.push_blob(repo, b"{}")
    refs = {}
    for kind in ("application/vnd.example.sbom", "application/vnd.example.signature"):
        art = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": kind,
               "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
               "layers": [{"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2}],
               "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": size},
               "annotations": {"kind": kind}}
        r = api("PUT", f"/v2/{repo}/manifests/{sha256(json.dumps(art).encode())}", data=json.dumps(art),
                headers={"Content-Type": OCI_MANIFEST})
        assert r.status_code == 201 and r.headers["OCI-Subject"] == subject
        refs[kind] = r.headers["Docker-Content-Digest"]
    r = api("GET", f"/v2/{repo}/referrers/{subject}")
    assert r.status_code == 200 and r.headers["Content-Type"] == OCI_INDEX
    found = {m["artifactType"]: m for m in r.json()["manifests"]}
    assert {k: m["digest"] for k, m in found.items()} == refs
    assert found["application/vnd.example.sbom"]["annotations"] == {"kind": "application/vnd.example.sbom"}
    r = api("GET", f"/v2/{repo}/referrers/{subject}", params={"artifactType": "application/vnd.example.signature"})
    assert [m["digest"] for m in r.json()["manifests"]] == [refs["application/vnd.example.signature"]]
    assert r.headers["OCI-Filters-Applied"] == "artifactType"
    r = api("GET", f"/v2/{repo}/referrers/{sha256(b'no subject')}")
    assert r.status_code == 200 and r.json()["manifests"] == []


# --- content management --------------------------------------------------------------------------
def test_deleted_tag_is_gone_but_its_manifest_stays(api: Api, admin_api: Api) -> None:
    repo = repo_name()
    digest, doc = api.push_image(repo, "v1", [b"x"])
    api.push_manifest(repo, "v2", doc)
    assert admin_api("DELETE", f"/v2/{repo}/manifests/v1").status_code == 202
    r = api("GET", f"/v2/{repo}/manifests/v1")
    assert r.status_code == 404 and Api.error_code(r) == "MANIFEST_UNKNOWN"
    assert api("GET", f"/v2/{repo}/manifests/{digest}").status_code == 200
    assert api("GET", f"/v2/{repo}/tags/list").json()["tags"] == ["v2"]
    assert admin_api("DELETE", f"/v2/{repo}/manifests/v1").status_code == 404


def test_deleting_a_manifest_removes_its_tags(api: Api, admin_api: Api) -> None:
    repo = repo_name()
    digest, doc = api.push_image(repo, "v1", [b"y"])
    api.push_manifest(repo, "v2", doc)
    assert admin_api("DELETE", f"/v2/{repo}/manifests/{digest}").status_code == 202
    for ref in ("v1", "v2", digest):
        assert api("GET", f"/v2/{repo}/manifests/{ref}").status_code == 404
    assert api("GET", f"/v2/{repo}/tags/list").json()["tags"] == []


def test_blob_delete(api: Api, admin_api: Api) -> None:
    repo = repo_name()
    d = api.push_blob(repo, b"to delete")
    assert admin_api("DELETE", f"/v2/{repo}/blobs/{d}").status_code == 202
    r = api("GET", f"/v2/{repo}/blobs/{d}")
    assert r.status_code == 404 and Api.error_code(r) == "BLOB_UNKNOWN"
