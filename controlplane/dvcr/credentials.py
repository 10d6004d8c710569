"""DVCR's users and how other components find DVCR.

The server side keeps `DATA_DIR/dvcr/htpasswd` (bcrypt hashes only) and
`DATA_DIR/dvcr/users.json` (user -> role). Each built-in user's password lives in a
Docker-style auth file readable by root only, `DATA_DIR/dvcr-<user>.json`
(`{"auths": {"host:port": {"auth": base64(user:password)}}}`), which skopeo takes as
`--authfile` and `DvcrConnection` reads. `DATA_DIR/dvcr.json` says where DVCR listens and
which CA signs its certificate:

    {"url": "https://127.0.0.1:5443", "registry": "127.0.0.1:5443",
     "ca": "/var/lib/dvp/server/pki/ca.crt",
     "authfiles": {"node": ".../dvcr-node.json", "importer": ..., "admin": ...}}
"""

from __future__ import annotations

import base64
import json
import ssl
from dataclasses import dataclass
from pathlib import Path

import bcrypt

from controlplane.common.pki import new_token, write_private_file
from controlplane.dvcr.auth import hash_password, read_htpasswd

# Built-in users: the node handler pulls, the importer pushes, the admin also deletes and runs GC.
BUILTIN_USERS = {"node": ("dvcr-node", "pull"), "importer": ("dvcr-importer", "push"), "admin": ("dvcr-admin", "admin")}


def authfile_path(data_dir: Path, who: str) -> Path:
    return data_dir / f"dvcr-{who}.json"


def info_path(data_dir: Path) -> Path:
    return data_dir / "dvcr.json"


def _read_authfile(path: Path) -> tuple[str, str] | None:
    try:
        doc = json.loads(path.read_text())
        auth = next(iter(doc["auths"].values()))["auth"]
        user, _, password = base64.b64decode(auth).decode().partition(":")
        return user, password
    except (FileNotFoundError, KeyError, StopIteration, ValueError):
        return None


def write_authfile(path: Path, registry: str, user: str, password: str) -> None:
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    write_private_file(path, json.dumps({"auths": {registry: {"auth": auth}}}, indent=1).encode())


def ensure_users(data_dir: Path, registry: str) -> tuple[Path, Path]:
    """Create (or keep) the built-in users; return the htpasswd and roles files."""
    dvcr_dir = data_dir / "dvcr"
    htpasswd, roles_path = dvcr_dir / "htpasswd", dvcr_dir / "users.json"
    try:
        hashes = read_htpasswd(htpasswd)
    except FileNotFoundError:
        hashes = {}
    roles: dict[str, str] = json.loads(roles_path.read_text()) if roles_path.exists() else {}
    changed = False
    for who, (user, role) in BUILTIN_USERS.items():
        path = authfile_path(data_dir, who)
        found = _read_authfile(path)
        password = found[1] if found and found[0] == user else new_token()
        if user not in hashes or not bcrypt.checkpw(password.encode(), hashes[user]):
            hashes[user] = hash_password(password).encode()
            changed = True
        if roles.get(user) != role:
            roles[user] = role
            changed = True
        write_authfile(path, registry, user, password)  # the address may have changed (port 0)
    if changed or not htpasswd.exists():
        lines = "".join(f"{u}:{h.decode()}\n" for u, h in sorted(hashes.items()))
        write_private_file(htpasswd, lines.encode())
        write_private_file(roles_path, json.dumps(roles, indent=1).encode())
    return htpasswd, roles_path


def write_info(data_dir: Path, *, url: str, registry: str, ca: Path) -> Path:
    doc = {"url": url, "registry": registry, "ca": str(ca),
           "authfiles": {who: str(authfile_path(data_dir, who)) for who in BUILTIN_USERS}}
    path = info_path(data_dir)
    write_private_file(path, json.dumps(doc, indent=1).encode())
    path.chmod(0o644)
    return path


@dataclass
class DvcrConnection:
    """Where DVCR is and how to log in: what every client of DVCR needs."""

    url: str
    ca_file: Path | None = None
    username: str | None = None
    password: str | None = None
    token: str | None = None
    insecure: bool = False

    @property
    def registry(self) -> str:
        return self.url.split("://", 1)[-1].rstrip("/")

    def ssl_context(self) -> ssl.SSLContext | bool:
        if self.url.startswith("http://"):
            return False
        if self.insecure:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            return ctx
        return ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)

    def authorization(self) -> str | None:
        if self.token:
            return f"Bearer {self.token}"
        if self.username is not None:
            return "Basic " + base64.b64encode(f"{self.username}:{self.password or ''}".encode()).decode()
        return None

    @classmethod
    def from_info(cls, info: Path, *, user: str = "importer") -> DvcrConnection:
        """Read `dvcr.json` and the auth file of a built-in user (node, importer or admin)."""
        try:
            doc = json.loads(info.read_text())
        except FileNotFoundError as exc:
            raise FileNotFoundError(f"{info}: DVCR connection file not found (is `dvp server` or `dvp dvcr serve` "
                                    "running with this data directory?)") from exc
        creds = _read_authfile(Path(doc["authfiles"][user])) if user in doc.get("authfiles", {}) else None
        if creds is None:
            raise FileNotFoundError(f"{info}: no readable credentials for DVCR user {user!r}")
        return cls(url=doc["url"], ca_file=Path(doc["ca"]), username=creds[0], password=creds[1])
