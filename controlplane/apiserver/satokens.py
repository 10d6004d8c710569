"""ServiceAccount tokens, as kube-apiserver's TokenRequest makes them: a JWT (ES256) signed
with `DATA_DIR/pki/sa.key`, naming `system:serviceaccount:NS:NAME` and the account's uid.

`serviceaccounts.py` issues them (`POST .../serviceaccounts/NAME/token`); the API server's
authenticator accepts one while it has not expired, its audiences include the API server's
(`API_AUDIENCE`, kube's default issuer), and the ServiceAccount it names still exists with
the same uid — so deleting the account ends every token made for it at the next request.
Tokens are never stored or logged: the signature is the proof.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from controlplane.apiserver.auth import User
from controlplane.common.pki import write_private_file

ISSUER = API_AUDIENCE = "https://kubernetes.default.svc.cluster.local"
PREFIX = "system:serviceaccount:"
LEEWAY = 60.0  # seconds of clock skew tolerated on nbf/iat
UidLookup = Callable[[str, str], str | None]  # (namespace, name) -> the ServiceAccount's uid, or None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def ensure_signing_key(pki_dir: Path) -> ec.EllipticCurvePrivateKey:
    """The key that signs ServiceAccount tokens (made on first start, mode 0600)."""
    path = pki_dir / "sa.key"
    if not path.exists():
        key = ec.generate_private_key(ec.SECP256R1())
        write_private_file(path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                   serialization.NoEncryption()))
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(loaded, ec.EllipticCurvePrivateKey)
    return loaded


def groups_of(namespace: str) -> tuple[str, ...]:
    return ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated")


class ServiceAccountTokens:
    def __init__(self, key: ec.EllipticCurvePrivateKey, lookup: UidLookup) -> None:
        self._key = key
        self._public = key.public_key()
        der = self._public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        self.key_id = _b64(hashlib.sha256(der).digest())
        self._lookup = lookup

    def issue(self, namespace: str, name: str, uid: str, *, audiences: list[str], seconds: int) -> tuple[str, float]:
        """A signed token for the account and when it expires (epoch seconds)."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "aud": audiences, "exp": now + seconds, "iat": now, "nbf": now, "iss": ISSUER, "jti": str(uuid.uuid4()),
            "sub": f"{PREFIX}{namespace}:{name}",
            "kubernetes.io": {"namespace": namespace, "serviceaccount": {"name": name, "uid": uid}},
        }
        header = {"alg": "ES256", "kid": self.key_id, "typ": "JWT"}
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        r, s = decode_dss_signature(self._key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        return f"{signing_input}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}", float(claims["exp"])

    def _claims(self, token: str) -> dict[str, Any] | None:
        """The claims of a token this server signed, or None (any malformation is just 'not ours')."""
        parts = token.split(".")
        if len(parts) != 3:
            return None
        try:
            header = json.loads(_unb64(parts[0]))
            signature = _unb64(parts[2])
            if not isinstance(header, dict) or header.get("alg") != "ES256" or len(signature) != 64:
                return None
            der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
            self._public.verify(der, f"{parts[0]}.{parts[1]}".encode(), ec.ECDSA(hashes.SHA256()))
            claims = json.loads(_unb64(parts[1]))
        except (ValueError, binascii.Error, InvalidSignature, UnicodeDecodeError):
            return None
        return claims if isinstance(claims, dict) else None

    def authenticate(self, header: str | None) -> User | None:
        if not header or not header.startswith("Bearer ") or header.count(".") != 2:
            return None
        claims = self._claims(header[7:].strip())
        if claims is None or claims.get("iss") != ISSUER:
            return None
        now = time.time()
        exp, nbf = claims.get("exp"), claims.get("nbf", 0)
        if not isinstance(exp, int) or not isinstance(nbf, int) or now >= exp or nbf > now + LEEWAY:
            return None
        audiences = claims.get("aud")
        if not isinstance(audiences, list) or API_AUDIENCE not in audiences:
            return None
        info = claims.get("kubernetes.io")
        account = info.get("serviceaccount") if isinstance(info, dict) else None
        if not isinstance(info, dict) or not isinstance(account, dict):
            return None
        namespace, name, uid = info.get("namespace"), account.get("name"), account.get("uid")
        if not isinstance(namespace, str) or not isinstance(name, str) or not uid:
            return None
        if self._lookup(namespace, name) != uid:  # deleted (or deleted and made again): refused
            return None
        return User(f"{PREFIX}{namespace}:{name}", groups_of(namespace), float(exp))
