"""The data directory of a real `dvp server` is private: the datastore and its WAL, keys,
tokens and kubeconfigs 0600, every directory (pki/, DVCR's storage) 0700; and modes made
wrong while it was stopped are narrowed at the next start, with a warning naming them."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from pathlib import Path

import pytest
import requests

from tests.services.apiserver import ApiServerProcess

pytestmark = pytest.mark.integration


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def push_blob(server: ApiServerProcess, data: bytes) -> None:
    info = json.loads(server.dvcr_info.read_text())
    auth = json.loads(Path(info["authfiles"]["importer"]).read_text())
    user, _, password = base64.b64decode(next(iter(auth["auths"].values()))["auth"]).decode().partition(":")
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    s = requests.Session()
    s.trust_env = False
    r = s.post(f"{info['url']}/v2/modes/test/blobs/uploads/", params={"digest": digest}, data=data,
               auth=(user, password), verify=info["ca"], timeout=60)
    assert r.status_code == 201, r.text


def open_to_others(root: Path) -> list[str]:
    found = []
    for dirpath, _dirs, files in os.walk(root):
        here = Path(dirpath)
        if mode(here) != 0o700:
            found.append(f"{here} {mode(here):04o}")
        for name in files:
            path = here / name
            if path.suffix != ".crt" and name != "dvcr.json" and mode(path) & 0o077:
                found.append(f"{path} {mode(path):04o}")
    return found


def test_data_directory_is_private_and_fixed_at_start(tmp_path: Path, kubectl_path: Path) -> None:
    server = ApiServerProcess(tmp_path / "data")
    server.start()
    server.wait_ready()  # DVCR too: the blob push below needs it
    try:
        assert server.raw("POST", "/api/v1/namespaces/default/secrets",
                          json.dumps({"metadata": {"name": "s"}, "stringData": {"a": "b"}}).encode(),
                          headers={"Content-Type": "application/json"})[0] == 201
        push_blob(server, os.urandom(4096))
        data = server.data_dir
        for name in ("state.db", "state.db-wal", "state.db-shm", "tokens.json", "kubeconfig"):
            assert mode(data / name) == 0o600, name
        assert mode(data / "pki") == 0o700 and mode(data / "dvcr" / "storage") == 0o700
        assert all(mode(k) == 0o600 for k in (data / "pki").glob("*.key"))
        assert not open_to_others(data), open_to_others(data)
    finally:
        server.stop()
    loosened = [data / "state.db", data / "pki", data / "dvcr" / "storage", data / "tokens.json",
                next((data / "dvcr" / "storage" / "blobs").rglob("data"))]
    for path in loosened:
        path.chmod(0o755 if path.is_dir() else 0o644)
    server.start()
    server.wait_ready()
    try:
        assert not open_to_others(data), open_to_others(data)
        log = server.log_path.read_text()
        assert "have been made private" in log and f"{data / 'state.db'} was 0644, now 0600" in log
        assert server.raw("GET", "/api/v1/namespaces/default/secrets/s")[0] == 200
    finally:
        server.stop()
