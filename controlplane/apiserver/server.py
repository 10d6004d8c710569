"""The API server as one component: `APIServer(config).start()` runs named steps (PKI,
datastore, built-in kinds, CRDs, bootstrap objects, background loops, HTTPS listener),
each failing with its name as context, and sets `ready` when it serves.

The embedded target (`controlplane.embedded`) starts this first, then DVCR, the
controllers and the node handler against the kubeconfig it writes.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from controlplane.apiserver import (
    errors,
    flowcontrol,
    metrics,
    metrics_api,
    reviews,
    satokens,
    serviceaccounts,
    services,
    subresources,
    tokenreview,
)
from controlplane.apiserver.app import ApiApp
from controlplane.apiserver.auth import BearerChain, TokenAuthenticator
from controlplane.apiserver.authz import bootstrap as authz_bootstrap
from controlplane.apiserver.authz.audit import AuditLog
from controlplane.apiserver.authz.kinds import rbac_resources
from controlplane.apiserver.bodies import BodyLimits
from controlplane.apiserver.builtins import builtin_resources
from controlplane.apiserver.certauth import FILE_NAME as CLIENT_CERTS_FILE
from controlplane.apiserver.certauth import ClientCertAuthenticator
from controlplane.apiserver.event_ttl import DEFAULT_TTL, EventExpiry
from controlplane.apiserver.gc import GarbageCollector
from controlplane.apiserver.handlers import ResourceHandlers
from controlplane.apiserver.lifecycle import Lifecycle
from controlplane.apiserver.readyz import ComponentChecks
from controlplane.apiserver.resources import Registry
from controlplane.apiserver.service import ApiService
from controlplane.apiserver.storage import Store, StoreSettings
from controlplane.apiserver.watch import WatchHub
from controlplane.common import filemodes, pki, upgradetest
from controlplane.common.jsoncopy import json_copy
from controlplane.common.kubeconfig import read_kubeconfig, write_kubeconfig
from controlplane.common.listener import app_runner

log = logging.getLogger(__name__)

PROXY_USER = "system:apiserver-proxy"
MAX_REQUEST_LINE = 1 << 20
"""Longest request line taken (aiohttp's default is 8 KiB): kube-apiserver takes 1 MiB of request
line and headers (Go's MaxHeaderBytes), and a label or field selector of a few hundred terms
makes a URL longer than 8 KiB."""
MAX_HEADER_FIELD = 64 << 10
"""Longest single header taken (a large bearer token fits); aiohttp's default is 8 KiB."""
BOOTSTRAP_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


class StartupError(RuntimeError):
    """A start-up step failed; the message names the step."""


@dataclass
class ServerConfig:
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 6443
    advertise_host: str = ""
    extra_sans: list[str] = field(default_factory=list)
    crds: list[dict[str, Any]] = field(default_factory=list)
    store: StoreSettings = field(default_factory=StoreSettings)
    limits: BodyLimits = field(default_factory=BodyLimits)
    # set when a supervisor runs the components: its status file feeds /readyz?verbose
    component_status_file: Path | None = None
    # also serve plain HTTP on this Unix socket (mode 0600) for components on this host
    unix_socket: Path | None = None
    # "RBAC" (with the node authorizer and the audit log), or "AlwaysAllow" (benchmarks' peer)
    authorization: str = "RBAC"
    # an audit.k8s.io/v1 Policy for the audit log (None: every request at Metadata)
    audit_policy_file: Path | None = None
    # the controllers run against this server: creates get their finalizers (admission_finalizers)
    finalizers_on_create: bool = False
    # API priority and fairness (flowcontrol): requests between the loop and their first wait at
    # once (0: no gate, every request in arrival order), and the queued requests a level holds
    # before it answers 429
    flow_seats: int = 2
    flow_queue_limit: int = 2000
    # seconds an Event lives after its last write (kube-apiserver's --event-ttl)
    event_ttl: float = DEFAULT_TTL

    @property
    def pki_dir(self) -> Path:
        return self.data_dir / "pki"

    @property
    def client_ca_file(self) -> Path:
        """kube-apiserver's `--client-ca-file`: client certificates signed by it authenticate."""
        return self.pki_dir / "ca.crt"

    @property
    def kubeconfig_path(self) -> Path:
        return self.data_dir / "kubeconfig"


class APIServer:
    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.ready = asyncio.Event()
        self.port = config.port
        self.store: Store | None = None
        self.service: ApiService | None = None
        self.app: ApiApp | None = None
        self.auth: TokenAuthenticator | None = None
        self.ca: pki.KeyPair | None = None
        self.registry = Registry()
        self._runner: web.AppRunner | None = None
        self._gc: GarbageCollector | None = None
        self._event_ttl: EventExpiry | None = None
        self._default_accounts: serviceaccounts.DefaultServiceAccounts | None = None
        self._lifecycle: Lifecycle | None = None
        self.admin_token = ""
        self.proxy_token = ""
        self._audit: AuditLog | None = None

    @property
    def url(self) -> str:
        host = self.config.advertise_host or (self.config.host if self.config.host not in ("0.0.0.0", "::") else "127.0.0.1")
        return f"https://{host}:{self.port}"

    async def _step(self, name: str, fn: Callable[[], Awaitable[None] | None]) -> None:
        log.info("api server: %s", name)
        try:
            result = fn()
            if asyncio.iscoroutine(result):
                await result
        except Exception as exc:
            raise StartupError(f"{name}: {exc}") from exc

    async def start(self) -> None:
        await self._step("preparing data directory", self._prepare_dir)
        await self._step("creating certificates and tokens", self._pki)
        await self._step("opening datastore", self._open_store)
        await self._step("registering built-in kinds and stored CRDs", self._register)
        await self._step("applying bundled CRDs", self._apply_crds)
        await self._step("creating bootstrap namespaces", self._bootstrap)
        await self._step("starting garbage collector", self._start_loops)
        await self._step(f"listening on {self.config.host}:{self.config.port}", self._listen)
        await self._step("writing kubeconfig", self._write_kubeconfig)
        await self._step("publishing the kubernetes Service", self._publish_service)
        self.ready.set()
        log.info("api server ready at %s", self.url)

    def _prepare_dir(self) -> None:
        self.config.data_dir.mkdir(parents=True, exist_ok=True)
        self.config.data_dir.chmod(0o700)
        filemodes.create_private_file(self.config.data_dir / "state.db")  # SQLite gives its WAL the same mode
        filemodes.secure_tree(self.config.data_dir)

    def _sans(self) -> list[str]:
        sans = ["localhost", "127.0.0.1", socket.gethostname(), *self.config.extra_sans]
        for h in (self.config.host, self.config.advertise_host):
            if h and h not in ("0.0.0.0", "::"):
                sans.append(h)
        return sans

    def _pki(self) -> None:
        self.ca = pki.ensure_ca(self.config.pki_dir)
        self.serving = pki.ensure_serving_cert(self.ca, self.config.pki_dir, "apiserver", sans=self._sans())
        self.auth = TokenAuthenticator(self.config.data_dir / "tokens.json")
        kc = self.config.kubeconfig_path
        if kc.exists():
            token = read_kubeconfig(kc)["token"]
            if self.auth.authenticate(f"Bearer {token}") is not None:
                self.admin_token = token
        if not self.admin_token:
            self.auth.revoke_user("admin")
            self.admin_token = self.auth.issue("admin", ["system:masters"])
        # the token the API server shows node handlers when it proxies consoles (new each start)
        self.auth.revoke_user(PROXY_USER)
        self.proxy_token = self.auth.issue(PROXY_USER, ["system:masters"])

    def _open_store(self) -> None:
        self.store = Store(self.config.data_dir / "state.db", settings=self.config.store)
        self.store.start()
        self.service = ApiService(self.store, self.registry, limits=self.config.limits,
                                  finalizers_on_create=self.config.finalizers_on_create)

    def _register(self) -> None:
        for info in [*builtin_resources(), *services.service_resources(), *rbac_resources(),
                     *serviceaccounts.service_account_resources()]:
            self.registry.add(info)
        assert self.service is not None
        self._lifecycle = Lifecycle(self.service)
        self._lifecycle.load_crds()
        self._lifecycle.start()

    async def _apply_crds(self) -> None:
        assert self.service is not None
        info = self.registry.get("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        assert info is not None
        for crd in self.config.crds:
            name = crd["metadata"]["name"]
            try:
                current = self.service.get(info, "", name)
            except errors.ApiError:
                await self.service.create(info, "", json_copy(crd))
                continue
            desired = json_copy(crd)
            desired["metadata"] = {**current.obj["metadata"], **desired.get("metadata", {}),
                                   "resourceVersion": str(current.rv)}
            await self.service.update(info, "", name, desired)

    async def _bootstrap(self) -> None:
        assert self.service is not None
        info = self.registry.get("", "v1", "namespaces")
        assert info is not None
        for ns in BOOTSTRAP_NAMESPACES:
            try:
                self.service.get(info, "", ns)
            except errors.ApiError:
                await self.service.create(info, "", {"metadata": {"name": ns}})
        await authz_bootstrap.ensure_defaults(self.service)

    def _start_loops(self) -> None:
        assert self.service is not None
        self._gc = GarbageCollector(self.service)
        self._gc.start()
        self._event_ttl = EventExpiry(self.service, self.config.event_ttl)
        self._event_ttl.start()
        self._default_accounts = serviceaccounts.DefaultServiceAccounts(self.service)
        self._default_accounts.start()

    async def _listen(self) -> None:
        assert self.service is not None and self.store is not None and self.auth is not None
        hub = WatchHub(self.store)
        metrics.install(self.store, hub)  # scrape-time figures of this server's datastore
        sa_tokens = satokens.ServiceAccountTokens(satokens.ensure_signing_key(self.config.pki_dir),
                                                  serviceaccounts.uid_lookup(self.service))
        bearer = BearerChain(self.auth, sa_tokens)
        self.app = ApiApp(self.registry, ResourceHandlers(self.service, hub), bearer,
                          server_address=f"{self.config.host}:{self.config.port}", ready=self._is_ready,
                          limits=self.config.limits,
                          certs=ClientCertAuthenticator(self.config.data_dir / CLIENT_CERTS_FILE))
        if self.config.flow_seats > 0:  # after authentication, before authorization (kube's order)
            gate = flowcontrol.FairGate(self.config.flow_seats, self.config.flow_queue_limit)
            self.app.authenticated_middlewares.append(flowcontrol.middleware(gate))
        store = self.store
        self.app.health.add("etcd", lambda: None if store.alive() else "the datastore writer stopped")
        self.app.health.add_source(ComponentChecks(self._is_ready, status_file=self.config.component_status_file))
        if self.config.component_status_file is not None:  # supervised: the components' figures too
            self.app.component_metrics = self.config.data_dir
        proxy = subresources.StreamProxy(self.service, ca_file=self.ca.cert_path, token=self.proxy_token)  # type: ignore[union-attr]
        self.app.add_group(subresources.GROUP, subresources.VERSION, subresources.RESOURCES, proxy.handle)
        self.app.add_group(tokenreview.GROUP, tokenreview.VERSION, tokenreview.RESOURCES + reviews.AUTHN_RESOURCES,
                           reviews.authentication_handler(tokenreview.handler(bearer)))
        self.app.subresource_handlers[("", "serviceaccounts", "token")] = serviceaccounts.token_handler(
            self.service, sa_tokens)
        authorizer = None
        if self.config.authorization == "RBAC":
            authorizer, authorization = authz_bootstrap.install(self.service, self.config.data_dir,
                                                                policy_file=self.config.audit_policy_file)
            self.app.authenticated_middlewares.append(authorization.handle)
            self.app.unauthenticated_hooks.append(authorization.record_unauthenticated)
            self._audit = authorization.audit
        self.app.add_group(reviews.AUTHZ_GROUP, reviews.VERSION, reviews.AUTHZ_RESOURCES,
                           reviews.authorization_handler(authorizer))
        self.app.add_group(metrics_api.GROUP, metrics_api.VERSION, metrics_api.RESOURCES,
                           metrics_api.handler(self.store))
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.serving.cert_path, self.serving.key_path)
        # ask for a client certificate (optional); one that is shown must verify or the handshake ends
        ctx.verify_mode = ssl.CERT_OPTIONAL
        ctx.load_verify_locations(cafile=str(self.config.client_ca_file))
        self._runner = app_runner(self.app.make(), shutdown_timeout=1.0, lingering_time=0,  # unread bodies: close, never drain
                                  max_line_size=MAX_REQUEST_LINE, max_field_size=MAX_HEADER_FIELD)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port, ssl_context=ctx, backlog=1024,
                           reuse_address=True)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None)
        if sockets:
            self.port = sockets[0].getsockname()[1]
        if self.config.unix_socket is not None:
            await self._listen_unix(self.config.unix_socket)

    async def _listen_unix(self, path: Path) -> None:
        """Same app, same authentication, no TLS: the socket file is the owner's only."""
        assert self._runner is not None
        path.unlink(missing_ok=True)
        await web.UnixSite(self._runner, str(path)).start()
        path.chmod(0o600)

    async def _publish_service(self) -> None:
        assert self.service is not None
        host = self.config.advertise_host or self.config.host
        try:
            await services.ensure_kubernetes_service(self.service, ip=services.endpoint_ip(host), port=self.port)
        except errors.ApiError as exc:  # e.g. `default` being deleted: serve anyway, say why it is missing
            log.warning("the kubernetes Service in default was not written: %s", exc.message)

    def _is_ready(self) -> bool:
        return self.ready.is_set() and not upgradetest.fails("server")

    def _write_kubeconfig(self) -> None:
        assert self.ca is not None
        write_kubeconfig(self.config.kubeconfig_path, server=self.url, ca_pem=self.ca.cert_pem(),
                         token=self.admin_token)

    def issue_token(self, user: str, groups: list[str]) -> str:
        """A new bearer token for a component (node agent, DVCR, controllers)."""
        assert self.auth is not None
        return self.auth.issue(user, groups)

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()
        if self._audit is not None:
            self._audit.close()
        for loop_owner in (self._gc, self._event_ttl, self._lifecycle, self._default_accounts):
            if loop_owner is not None:
                await loop_owner.queue.stop()
        if self.store:
            await self.store.close()
