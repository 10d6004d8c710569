"""An HTTPS server on loopback with a certificate from the platform's kind of CA, for unit tests
that need real TLS (a client verifying the server, or refusing it)."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from controlplane.common import pki


@contextmanager
def tls_server(tmp: Path, handler: type[BaseHTTPRequestHandler]) -> Iterator[tuple[str, bytes]]:
    """Serve `handler` over TLS on 127.0.0.1; yields the URL and the PEM of the CA that signed it."""
    ca = pki.ensure_ca(tmp / "pki")
    pair = pki.issue_cert(ca, tmp / "pki", "serving", common_name="server", sans=["127.0.0.1"])
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pair.cert_path, pair.key_path)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"https://127.0.0.1:{httpd.server_address[1]}", ca.cert_pem()
    finally:
        httpd.shutdown()
        httpd.server_close()
