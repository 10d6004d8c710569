"""Real registry clients against DVCR: skopeo (Debian) copies images in and out with the
digests and bytes compared, curl drives the raw API, and the embedded `dvp server`
accepts platform bearer tokens (TokenReview) from skopeo and curl."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.integration.dvcr.helpers import file_sha256, oci_layout, run, skopeo, tar_of
from tests.services.apiserver import DVCR_READY_LINE, ApiServerProcess
from tests.services.dvcr import DvcrProcess

pytestmark = pytest.mark.integration


def _blobs(layout: Path) -> dict[str, Path]:
    return {f"sha256:{p.name}": p for p in (layout / "blobs" / "sha256").iterdir()}


@pytest.mark.parametrize("gzip_layer", [False, True], ids=["tar-layer", "gzip-layer"])
def test_skopeo_copies_into_and_out_of_dvcr_unchanged(dvcr: DvcrProcess, tmp_path: Path, gzip_layer: bool) -> None:
    src = tmp_path / "src"
    layer = tar_of({"disk/disk.img": os.urandom(3 << 20)})
    manifest_digest = oci_layout(src, layer, gzip_layer=gzip_layer)
    ref = f"docker://{dvcr.registry}/skopeo/copy-{int(gzip_layer)}:v1"
    run(skopeo(), "copy", "--preserve-digests", "--dest-cert-dir", str(dvcr.cert_dir()), "--authfile",
        str(dvcr.authfile("importer")), f"oci:{src}:latest", ref)
    raw = json.loads(run(skopeo(), "inspect", "--raw", "--cert-dir", str(dvcr.cert_dir()), "--authfile",
                         str(dvcr.authfile("node")), ref).stdout)
    assert raw == json.loads(_blobs(src)[manifest_digest].read_bytes())
    digest = run(skopeo(), "inspect", "--format", "{{.Digest}}", "--cert-dir", str(dvcr.cert_dir()), "--authfile",
                 str(dvcr.authfile("node")), ref).stdout.strip()
    assert digest == manifest_digest, "the manifest in DVCR is byte for byte the one pushed"
    out = tmp_path / "out"
    run(skopeo(), "copy", "--preserve-digests", "--src-cert-dir", str(dvcr.cert_dir()), "--authfile",
        str(dvcr.authfile("node")), ref, f"oci:{out}:v1")
    src_blobs, out_blobs = _blobs(src), _blobs(out)
    assert set(out_blobs) == set(src_blobs)
    for d, path in out_blobs.items():
        assert file_sha256(path) == d
        assert path.read_bytes() == src_blobs[d].read_bytes()
    tags = json.loads(run(skopeo(), "list-tags", "--cert-dir", str(dvcr.cert_dir()), "--authfile",
                          str(dvcr.authfile("node")), ref.rsplit(":", 1)[0]).stdout)
    assert tags["Tags"] == ["v1"]


def test_skopeo_delete_removes_the_tag(dvcr: DvcrProcess, tmp_path: Path) -> None:
    oci_layout(tmp_path / "src", tar_of({"disk/x": b"x" * 1000}))
    ref = f"docker://{dvcr.registry}/skopeo/delete:v1"
    certs, admin = str(dvcr.cert_dir()), str(dvcr.authfile("admin"))
    run(skopeo(), "copy", "--preserve-digests", "--dest-cert-dir", certs, "--authfile", admin,
        f"oci:{tmp_path / 'src'}:latest", ref)
    run(skopeo(), "delete", "--cert-dir", certs, "--authfile", admin, ref)
    r = subprocess.run([skopeo(), "inspect", "--cert-dir", certs, "--authfile", admin, ref], capture_output=True,
                       text=True)
    assert r.returncode != 0 and "manifest unknown" in r.stderr.lower()


def test_skopeo_without_credentials_is_refused(dvcr: DvcrProcess, tmp_path: Path) -> None:
    oci_layout(tmp_path / "src", tar_of({"disk/x": b"y" * 10}))
    empty_auth = tmp_path / "auth.json"
    empty_auth.write_text('{"auths": {}}')
    r = subprocess.run([skopeo(), "copy", "--dest-cert-dir", str(dvcr.cert_dir()), "--authfile", str(empty_auth),
                        f"oci:{tmp_path / 'src'}:latest", f"docker://{dvcr.registry}/anon/push:v1"],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "unauthorized" in r.stderr.lower()


def test_curl_drives_the_raw_api(dvcr: DvcrProcess, tmp_path: Path) -> None:
    user, password = dvcr.creds("importer")
    blob = tmp_path / "blob.bin"
    blob.write_bytes(os.urandom(200_000))
    d = file_sha256(blob)
    base = ["curl", "-sS", "--fail-with-body", "--cacert", str(dvcr.ca_file), "-u", f"{user}:{password}"]
    head = run(*base, "-X", "POST", "-D", "-", "-o", "/dev/null", f"{dvcr.url}/v2/curl/raw/blobs/uploads/").stdout
    location = next(line.split(": ", 1)[1].strip() for line in head.splitlines() if line.lower().startswith("location"))
    run(*base, "-X", "PATCH", "-H", "Content-Type: application/octet-stream", "--data-binary", f"@{blob}",
        f"{dvcr.url}{location}")
    run(*base, "-X", "PUT", f"{dvcr.url}{location}?digest={d}")
    got = tmp_path / "got.bin"
    run(*base, "-o", str(got), f"{dvcr.url}/v2/curl/raw/blobs/{d}")
    assert got.read_bytes() == blob.read_bytes()
    r = subprocess.run(["curl", "-sS", "--cacert", str(dvcr.ca_file), "-o", "/dev/null", "-w", "%{http_code}",
                        f"{dvcr.url}/v2/curl/raw/blobs/{d}"], capture_output=True, text=True)
    assert r.stdout == "401"


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> ApiServerProcess:
    server = ApiServerProcess(tmp_path_factory.mktemp("embedded") / "data")
    server.start(ready_line=DVCR_READY_LINE)
    yield server  # type: ignore[misc]
    server.stop()


def test_dvp_server_runs_dvcr_and_accepts_platform_tokens(embedded: ApiServerProcess, tmp_path: Path) -> None:
    info = json.loads(embedded.dvcr_info.read_text())
    assert info["ca"] == str(embedded.ca_file), "DVCR's certificate comes from the platform CA"
    token = embedded.token  # the admin's platform token (system:masters)
    base = ["curl", "-sS", "--cacert", info["ca"], "-o", "/dev/null", "-w", "%{http_code}"]
    assert run(*base, "-H", f"Authorization: Bearer {token}", f"{info['url']}/v2/_catalog").stdout == "200"
    assert run(*base, "-H", "Authorization: Bearer not-a-platform-token", f"{info['url']}/v2/").stdout == "401"
    assert run(*base, f"{info['url']}/v2/").stdout == "401"
    certs = tmp_path / "certs"
    certs.mkdir()
    (certs / "ca.crt").write_bytes(Path(info["ca"]).read_bytes())
    oci_layout(tmp_path / "src", tar_of({"disk/disk.img": os.urandom(1 << 20)}))
    ref = f"docker://{info['registry']}/cvi/token-push:latest"
    run(skopeo(), "copy", "--preserve-digests", "--dest-cert-dir", str(certs), "--dest-registry-token", token,
        f"oci:{tmp_path / 'src'}:latest", ref)
    run(skopeo(), "inspect", "--cert-dir", str(certs), "--authfile", info["authfiles"]["node"], ref)


def test_a_platform_user_pulls_only_the_images_rbac_lets_it_read(embedded: ApiServerProcess) -> None:
    """A token with view in team-a: its pulls of vi/team-a/* get past authorization (404: no such
    image yet), vi/team-b/*, cvi/* and the repository list are refused (403, naming the rule)."""
    import requests

    from controlplane.apiserver.auth import TokenAuthenticator

    info = json.loads(embedded.dvcr_info.read_text())
    token = TokenAuthenticator(embedded.data_dir / "tokens.json").issue("puller", ["pullers"])
    for ns in ("team-a", "team-b"):
        embedded.kubectl("create", "namespace", ns)
    embedded.kubectl("create", "rolebinding", "puller-view", "--clusterrole=view", "--user=puller", "-n", "team-a")
    s = requests.Session()
    s.trust_env = False
    s.verify = info["ca"]

    def get(path: str, who: str) -> requests.Response:
        return s.get(f"{info['url']}/v2/{path}", headers={"Authorization": f"Bearer {who}"}, timeout=30)

    assert get("vi/team-a/disk/manifests/latest", token).status_code == 404
    refused = get("vi/team-b/disk/manifests/latest", token)
    assert refused.status_code == 403, refused.text
    assert refused.json()["errors"][0]["message"] == ('user "puller" may not get virtualimages "disk" in the namespace '
                                                      '"team-b", so not pull vi/team-b/disk')
    assert get("cvi/ubuntu/blobs/sha256:" + "0" * 64, token).status_code == 403
    assert get("_catalog", token).status_code == 403
    assert get("_catalog", embedded.token).status_code == 200  # the admin (push and admin roles) as before
    embedded.kubectl("create", "clusterrolebinding", "puller-cvi", "--clusterrole=view", "--user=puller")
    assert get("cvi/debian/manifests/latest", token).status_code == 404  # cluster-wide view: cluster images too
