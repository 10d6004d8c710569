"""`dvp dvcr`: run the registry alone, import an image, issue an upload URL, collect garbage.

    dvp dvcr serve       standalone DVCR (the dkp target; `dvp server` runs it embedded)
    dvp dvcr import      SOURCE --to REPO[:TAG]   (URL, docker://host/repo:tag, or a file)
    dvp dvcr upload-url  REPO[:TAG]               (an expiring URL for `curl -T FILE URL`)
    dvp dvcr gc          [--dry-run]

Clients find DVCR through DATA_DIR/dvcr.json (written by the server) and the built-in
users' auth files next to it; `--dvcr-url/--ca/--user/--password-file/--token` override.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Any

import click

from controlplane.common.announce import announce
from controlplane.common.hostport import check_host, split_host_port
from controlplane.common.logs import setup_logging

DEFAULT_DATA_DIR = Path("/var/lib/dvp/server")


def _split_listen(value: str) -> tuple[str, int]:
    try:
        return split_host_port(value)
    except ValueError as exc:
        raise click.BadParameter(f"{exc} (e.g. 127.0.0.1:5443)", param_hint="--listen") from None


def _fail(message: str, *, output: str = "table", doc: dict[str, Any] | None = None) -> None:
    if output == "json":
        click.echo(json.dumps({"error": doc or {"message": message}}, indent=1))
    click.echo(f"dvp dvcr: {message}", err=True)
    sys.exit(1)


def connection_options(fn: Any) -> Any:
    for opt in reversed([
        click.option("--data-dir", type=click.Path(path_type=Path), default=DEFAULT_DATA_DIR, show_default=True,
                     help="Data directory of `dvp server` / `dvp dvcr serve` (holds dvcr.json and auth files)."),
        click.option("--dvcr-url", default="", help="DVCR URL (https://host:port), instead of dvcr.json."),
        click.option("--ca", "ca_file", type=click.Path(path_type=Path, exists=True, dir_okay=False),
                     help="CA certificate DVCR's certificate is checked against."),
        click.option("--user", default="", help="DVCR user (with --password-file)."),
        click.option("--password-file", type=click.Path(path_type=Path, exists=True, dir_okay=False)),
        click.option("--token-file", type=click.Path(path_type=Path, exists=True, dir_okay=False),
                     help="A platform bearer token (checked by DVCR with a TokenReview)."),
    ]):
        fn = opt(fn)
    return fn


def make_connection(kw: dict[str, Any], *, role: str) -> Any:
    from controlplane.dvcr.credentials import DvcrConnection, info_path

    data_dir: Path = kw.pop("data_dir")
    url, ca, user = kw.pop("dvcr_url"), kw.pop("ca_file"), kw.pop("user")
    pw_file, token_file = kw.pop("password_file"), kw.pop("token_file")
    if url:
        conn = DvcrConnection(url=url, ca_file=ca)
    else:
        try:
            conn = DvcrConnection.from_info(info_path(data_dir), user=role)
        except (FileNotFoundError, KeyError) as exc:
            _fail(str(exc).strip('"'))
        if ca:
            conn.ca_file = ca
    if user:
        conn.username, conn.password, conn.token = user, pw_file.read_text().strip() if pw_file else "", None
    if token_file:
        conn.token, conn.username = token_file.read_text().strip(), None
    return conn


@click.group("dvcr", context_settings={"help_option_names": ["-h", "--help"]})
def dvcr() -> None:
    """DVCR: the OCI registry holding the platform's VM images, and its importer."""


@dvcr.command("serve")
@click.option("--data-dir", type=click.Path(path_type=Path), default=Path("/var/lib/dvp/dvcr"), show_default=True,
              help="Storage (DATA_DIR/dvcr/storage), certificates, users and dvcr.json.")
@click.option("--listen", default="127.0.0.1:5443", show_default=True, help="HOST:PORT (port 0 picks a free one).")
@click.option("--advertise-address", default="", help="Host name or IP clients use (in URLs and dvcr.json).")
@click.option("--tls-san", multiple=True, help="Extra name or IP for the serving certificate (repeatable).")
@click.option("--ca-dir", type=click.Path(path_type=Path), help="Directory with ca.crt/ca.key (created if missing).")
@click.option("--tls-cert", type=click.Path(path_type=Path, exists=True), help="Serving certificate (PEM).")
@click.option("--tls-key", type=click.Path(path_type=Path, exists=True), help="Its private key (PEM).")
@click.option("--htpasswd", type=click.Path(path_type=Path, exists=True), help="Extra users (bcrypt htpasswd).")
@click.option("--kubeconfig", type=click.Path(path_type=Path, exists=True),
              help="Kubeconfig of the platform API, to accept its bearer tokens (TokenReview).")
@click.option("--gc-grace", default=3600.0, show_default=True, type=click.FloatRange(min=0),
              help="GC keeps blobs and manifests younger than this many seconds.")
@click.option("--log-level", default="info", type=click.Choice(["debug", "info", "warning", "error"]))
def serve(data_dir: Path, listen: str, advertise_address: str, tls_san: tuple[str, ...], ca_dir: Path | None,
          tls_cert: Path | None, tls_key: Path | None, htpasswd: Path | None, kubeconfig: Path | None,
          gc_grace: float, log_level: str) -> None:
    """Run DVCR on its own over HTTPS (the embedded target runs it inside `dvp server`)."""
    from controlplane.dvcr.gc import GcSettings
    from controlplane.dvcr.server import DvcrConfig, DvcrServer

    setup_logging(log_level)
    if bool(tls_cert) != bool(tls_key):
        raise click.BadParameter("give both --tls-cert and --tls-key, or neither", param_hint="--tls-cert")
    host, port = _split_listen(listen)
    try:
        if advertise_address:
            check_host(advertise_address)
        for san in tls_san:
            check_host(san, wildcard=True)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--advertise-address/--tls-san") from None
    config = DvcrConfig(data_dir=data_dir, host=host, port=port, advertise_host=advertise_address,
                        extra_sans=list(tls_san), ca_dir=ca_dir, tls_cert=tls_cert, tls_key=tls_key,
                        htpasswd=htpasswd, kubeconfig=kubeconfig, gc=GcSettings(grace_seconds=gc_grace))

    async def main() -> None:
        server = DvcrServer(config)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            await server.start()
            announce(f"dvp dvcr: ready at {server.url}; connection file {server.info_path}")
            await stop.wait()
        finally:
            await server.stop()

    from controlplane.common.eventloop import run_event_loop
    from controlplane.dvcr.server import StartupError

    try:
        run_event_loop(main())
    except StartupError as exc:
        _fail(f"starting DVCR: {exc}")


def _source(spec: str, *, ca_bundle: Path | None, insecure: bool, pull_secret: Path | None,
            bearer_file: Path | None = None) -> Any:
    from controlplane.dvcr.importer.sources import FileSource, HttpSource, RegistrySource

    if spec.startswith(("http://", "https://")):
        bearer = bearer_file.read_text().strip() if bearer_file is not None else ""
        return HttpSource(spec, ca_bundle=ca_bundle, insecure=insecure, bearer=bearer)
    for prefix in ("docker://", "registry://"):
        if spec.startswith(prefix):
            return RegistrySource(spec[len(prefix):], pull_secret=pull_secret, ca_bundle=ca_bundle, insecure=insecure)
    path = Path(spec)
    if not path.exists():
        _fail(f"{spec}: no such file (sources: http(s):// URL, docker://host/repo:tag, or a local file)")
    return FileSource(path)


@dvcr.command("import")
@click.argument("source")
@click.option("--to", "target", required=True, metavar="REPO[:TAG]", help="e.g. cvi/ubuntu or vi/prod/ubuntu:latest")
@click.option("--checksum", multiple=True, metavar="ALG:HEX", help="md5, sha1, sha256 or sha512 of the source.")
@click.option("--ca-bundle", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="CA certificates for an https:// source or a source registry.")
@click.option("--insecure", is_flag=True, help="Don't verify the source's TLS certificate.")
@click.option("--pull-secret", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="A .dockerconfigjson file with credentials for a source registry.")
@click.option("--bearer-file", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="A file holding a bearer token an https:// source asks for (e.g. a node's volume endpoint).")
@click.option("--spool-dir", type=click.Path(path_type=Path, file_okay=False),
              help="Where a compressed source is unpacked before the push (default: the system temp dir).")
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--progress-json", is_flag=True, help="Report progress as JSON lines on stderr (for automation).")
@connection_options
def import_(source: str, target: str, checksum: tuple[str, ...], ca_bundle: Path | None, insecure: bool,
            pull_secret: Path | None, bearer_file: Path | None, spool_dir: Path | None, output: str,
            progress_json: bool, **kw: Any) -> None:
    """Import a VM image (qcow2, raw, iso, vmdk, vdi; plain, .gz or .xz) into DVCR.

    SOURCE is an http(s):// URL, docker://HOST/REPO:TAG (a containerDisk image in another
    registry), or a local file. The image lands at REPO:TAG (default tag latest) as a
    containerDisk artifact; `-o json` prints the result.
    """
    from controlplane.dvcr.cliprogress import run_import

    conn = make_connection(kw, role="importer")
    repo, _, tag = target.partition(":")
    from controlplane.dvcr.importer.checksum import parse_checksum
    from controlplane.dvcr.importer.errors import ImportFailed

    try:
        sums = dict(parse_checksum(c) for c in checksum)
        src = _source(source, ca_bundle=ca_bundle, insecure=insecure, pull_secret=pull_secret, bearer_file=bearer_file)
        result = asyncio.run(run_import(src, conn, repo, tag or "latest", sums, spool_dir=spool_dir,
                                        show=output == "table" and not progress_json,
                                        progress_json=progress_json))
    except ImportFailed as exc:
        _fail(exc.message, output=output, doc=exc.to_json())
        return
    if output == "json":
        click.echo(json.dumps(result.to_json(), indent=1))
    else:
        from controlplane.dvcr.cliprogress import print_result

        print_result(result)


@dvcr.command("upload-url")
@click.argument("target", metavar="REPO[:TAG]")
@click.option("--checksum", multiple=True, metavar="ALG:HEX", help="Checksum the uploaded file must have.")
@click.option("--ttl", default=3600.0, show_default=True, type=click.FloatRange(min=1), help="Seconds it stays valid.")
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@connection_options
def upload_url(target: str, checksum: tuple[str, ...], ttl: float, output: str, **kw: Any) -> None:
    """Issue an expiring upload URL for REPO[:TAG]: upload with `curl -T FILE URL`."""
    from controlplane.dvcr.importer.checksum import parse_checksum
    from controlplane.dvcr.uploadclient import UploadClientError, create_upload

    conn = make_connection(kw, role="importer")
    repo, _, tag = target.partition(":")
    try:
        doc = asyncio.run(create_upload(conn, repo, tag=tag or "latest",
                                        checksums=dict(parse_checksum(c) for c in checksum), ttl=ttl))
    except UploadClientError as exc:
        _fail(str(exc), output=output)
        return
    if output == "json":
        click.echo(json.dumps(doc, indent=1))
    else:
        click.echo(f"{doc['url']}\n(expires {doc['expiresAt']}; upload with: curl -T FILE '{doc['url']}')")


@dvcr.command("status")
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@connection_options
def status(output: str, **kw: Any) -> None:
    """Whether DVCR answers and whether a garbage collection runs (what `dvp upgrade` checks)."""
    from controlplane.dvcr.uploadclient import UploadClientError, gc_status

    conn = make_connection(kw, role="admin")
    try:
        doc = {"url": conn.url, "answering": True, "gcRunning": bool(asyncio.run(gc_status(conn))["running"])}
    except UploadClientError as exc:
        doc = {"url": conn.url, "answering": False, "gcRunning": False, "error": str(exc)}
    if output == "json":
        click.echo(json.dumps(doc, indent=1))
    else:
        click.echo(f"DVCR {doc['url']}: " + ("answering" if doc["answering"] else f"NOT answering: {doc['error']}")
                   + (", garbage collection running" if doc["gcRunning"] else ""))
    if not doc["answering"]:
        sys.exit(1)


@dvcr.command("gc")
@click.option("--dry-run", is_flag=True, help="List what would be removed; remove nothing.")
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@connection_options
def gc_(dry_run: bool, output: str, **kw: Any) -> None:
    """Remove blobs and untagged manifests no tag reaches (the registry is read-only meanwhile)."""
    from controlplane.dvcr.cliprogress import print_gc
    from controlplane.dvcr.uploadclient import UploadClientError, run_gc

    conn = make_connection(kw, role="admin")
    try:
        report = asyncio.run(run_gc(conn, dry_run=dry_run))
    except UploadClientError as exc:
        _fail(str(exc), output=output)
        return
    if output == "json":
        click.echo(json.dumps(report, indent=1))
    else:
        print_gc(report)
