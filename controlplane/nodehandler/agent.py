"""The node handler as one component: `Agent(config).start()` runs named steps, each failing with
its name as context, then runs until `stop()`. `dvp agent` runs it alone; `dvp server` runs it
in-process for a one-host install.

    state directory -> host facts + hypervisor decision -> API server -> libvirt -> VM network
    -> watches on this node's instances and volumes -> adopt domains, sweep orphans
    -> reconcilers -> console endpoint (TLS) -> Node + Lease heartbeats
    -> USB devices published as NodeUSBDevices (usb_devices.py)
    -> (vm-routes) routes to VMs of other nodes (vmroutes.py)

When libvirt does not answer at start, the handler still registers its Node, NotReady with
reason LibvirtUnavailable and what to do, and connects by itself when libvirt is back (then
adopts domains and starts reconciling): `dvp server` keeps serving the API, DVCR and the
controllers meanwhile. Stopping the agent stops watching and serving; it never touches the VMs, the bridge or dnsmasq,
so VMs keep running and a restarted agent adopts them (domains are found by instance uid).
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from controlplane.api.internal import NODE_LABEL, NodeReason
from controlplane.common.announce import announce
from controlplane.common.kube.client import KubeClient, KubeError
from controlplane.common.kube.controller import Controller
from controlplane.common.kube.informer import Informer, key_of
from controlplane.common.kube.settings import DEFAULT, RuntimeSettings
from controlplane.nodehandler import indexes, registry_access, tls
from controlplane.nodehandler.config import AgentConfig
from controlplane.nodehandler.console import ConsoleServer
from controlplane.nodehandler.consoleauth import TokenReviewer
from controlplane.nodehandler.context import INSTANCES, VOLUMES, NodeContext
from controlplane.nodehandler.domains import Domains
from controlplane.nodehandler.hypervisor import decide_required, gather_facts
from controlplane.nodehandler.images import ImageCache, ImageSource, LocalFileSource
from controlplane.nodehandler.instances import InstanceReconciler
from controlplane.nodehandler.layout import Layout
from controlplane.nodehandler.metrics import NodeMetrics
from controlplane.nodehandler.migrations import Migrations
from controlplane.nodehandler.network import NodeNetwork
from controlplane.nodehandler.node import NodeRegistrar
from controlplane.nodehandler.usb_devices import UsbPublisher
from controlplane.nodehandler.user_events import UserEventRecorder
from controlplane.nodehandler.vmroutes import NodeRoutes
from controlplane.nodehandler.volumes import VolumeReconciler

log = logging.getLogger(__name__)
INCOMING_GRACE = 600.0
"""Seconds an instance directory without a domain is kept (an incoming migration copies the seed first)."""



class AgentStartError(RuntimeError):
    """A start-up step failed; the message names the step."""


class Agent:
    name = "node handler"

    def __init__(self, config: AgentConfig, *, kube: KubeClient | None = None,
                 image_sources: Sequence[ImageSource] = ()) -> None:
        self.config = config
        self.layout = Layout(config.state_dir, config.run_dir)
        self._kube = kube
        self.image_sources = [*image_sources, LocalFileSource()]
        self.ctx: NodeContext | None = None
        self.registrar: NodeRegistrar | None = None
        self.access_watch: registry_access.AccessWatch | None = None
        self.console: ConsoleServer | None = None
        self.instance_controller: Controller | None = None
        self.volume_controller: Controller | None = None
        self.instance_reconciler: InstanceReconciler | None = None
        self.metrics: NodeMetrics | None = None
        self.routes: NodeRoutes | None = None
        self.usb: UsbPublisher | None = None
        self._stop = threading.Event()
        self._sweep_now = threading.Event()

    async def _step(self, name: str, fn: Callable[[], Any]) -> Any:
        log.info("node handler: %s", name)
        try:
            return await asyncio.get_running_loop().run_in_executor(None, fn)
        except Exception as exc:
            raise AgentStartError(f"{name}: {exc}") from exc

    async def start(self) -> None:
        c = self.config
        await self._step(f"preparing {c.state_dir}", self.layout.create)
        facts = await self._step(f"reading host facts under {c.host_root}", lambda: gather_facts(c.host_root))
        decision = await self._step("deciding the hypervisor", lambda: decide_required(facts, c.domain_type))
        log.info("hypervisor: %s (%s): %s", decision.domain_type, decision.reason, decision.message)
        kube = await self._step(f"connecting to the API server ({c.kubeconfig})", self._connect_api)
        domains = Domains(c.libvirt_uri, prefix=c.domain_prefix, node=c.node_name)
        libvirt_down = await self._try_libvirt(domains)
        network = NodeNetwork(bridge=c.bridge, subnet=c.network, state_dir=self.layout.network_dir(c.bridge))
        await self._step(f"setting up the VM network (bridge {c.bridge}, {c.vm_cidr})", network.ensure)
        selector = f"{NODE_LABEL}={c.node_name}"
        ctx = NodeContext(
            config=c, layout=self.layout, kube=kube, domains=domains, network=network,
            images=ImageCache(self.layout.images, self.image_sources), facts=facts, decision=decision,
            instances=Informer(kube, INSTANCES, label_selector=selector),
            volumes=Informer(kube, VOLUMES, label_selector=selector),
            events=UserEventRecorder(kube, "dvp-node-handler", host=c.node_name, delay=DEFAULT.event_delay),
        )
        self.ctx = ctx
        self.instance_reconciler = InstanceReconciler(ctx)
        self.instance_controller = Controller("instances", self.instance_reconciler.reconcile,
                                              workers=c.instance_workers, settings=ctx.runtime)
        self.volume_controller = Controller("volumes", VolumeReconciler(ctx).reconcile, workers=c.volume_workers,
                                            settings=ctx.runtime)
        self.instance_reconciler.migrations = Migrations(ctx, self.instance_controller.enqueue)
        indexes.register(ctx.instances)
        ctx.instances.add_handler(self._on_instance)
        ctx.volumes.add_handler(self._on_volume)
        domains.on_event(self._on_domain_event)
        await self._step("watching this node's instances and volumes", self._start_watches)
        if libvirt_down is None:
            await self._step("adopting running domains", self._adopt)
            self.instance_controller.start()
            self.volume_controller.start()
        node_ip = c.node_ip or tls.default_node_ip()
        pair = await self._step("preparing the console endpoint's certificate",
                                lambda: tls.serving_pair(c, self.layout, node_ip))
        host, port = _split(c.console_listen)
        self.console = ConsoleServer(ctx, TokenReviewer(kube), host=host, port=port,
                                     ssl_context=tls.server_context(pair))
        try:
            console_port = await self.console.start()
        except OSError as exc:
            raise AgentStartError(f"listening on {c.console_listen} for consoles: {exc}") from exc
        self.registrar = registrar = NodeRegistrar(kube, c, facts, decision, node_ip=node_ip)
        self.registrar.console_port = console_port
        if libvirt_down is None:
            self.registrar.set_ready(True, str(NodeReason.HANDLER_READY), "libvirt and the VM network are up")
        else:
            self.registrar.set_ready(False, str(NodeReason.LIBVIRT_UNAVAILABLE), libvirt_down)
        await self._step("asking DVCR whether it accepts this node's credentials",
                         lambda: registry_access.probe(self.image_sources, registrar))
        await self._step(f"registering node {c.node_name}", self.registrar.register)
        await self._step("renewing the node lease", self.registrar.renew_lease)
        self.registrar.start()
        self.access_watch = registry_access.AccessWatch(self.image_sources, self.registrar,
                                                        every=c.timings.node_status_every)
        self.access_watch.start()
        self.usb = UsbPublisher(kube, node=c.node_name, host_root=c.host_root, every=c.timings.usb_rescan_every)
        self.usb.start()
        if c.vm_routes:
            self.routes = NodeRoutes(ctx, node_ip=node_ip)
            await self._step("routing VM addresses of other nodes", self.routes.start)
        self.metrics = NodeMetrics(ctx)
        if libvirt_down is None:
            self._background()
        else:
            threading.Thread(target=self._await_libvirt, name="libvirt-wait", daemon=True).start()
        state = "ready" if libvirt_down is None else "running, NotReady until libvirt answers"
        announce(f"dvp agent: node {c.node_name} {state}; consoles on {host}:{console_port}")

    async def stop(self) -> None:
        self._stop.set()
        self._sweep_now.set()
        if self.metrics is not None:
            self.metrics.stop()
        if self.usb is not None:
            self.usb.stop()
        if self.routes is not None:
            self.routes.stop()  # the routes stay: VMs elsewhere stay reachable while the handler is away
        for ctl in (self.instance_controller, self.volume_controller):
            if ctl is not None:
                ctl.stop()
        if self.ctx is not None:
            self.ctx.instances.stop()
            self.ctx.volumes.stop()
        if self.registrar is not None:
            self.registrar.stop()
        if self.access_watch is not None:
            self.access_watch.stop()
        if self.console is not None:
            await self.console.stop()
        if self.ctx is not None:
            self.ctx.domains.close()

    # -- libvirt down at start: run NotReady, connect when it is back ------------------------------
    def _libvirt_down(self, exc: BaseException) -> str:
        return (f"libvirt at {self.config.libvirt_uri} does not answer ({exc}); start libvirtd "
                f"(systemctl start libvirtd): the node handler connects by itself when it is back")

    async def _try_libvirt(self, domains: Domains) -> str | None:
        """None when libvirt answers; else why not (the node then registers NotReady)."""
        log.info("node handler: connecting to libvirt at %s", self.config.libvirt_uri)
        try:
            await asyncio.get_running_loop().run_in_executor(None, domains.connect)
        except Exception as exc:
            message = self._libvirt_down(exc)
            log.warning("node handler: %s; the node is NotReady (%s) until then", message,
                        NodeReason.LIBVIRT_UNAVAILABLE)
            return message
        return None

    def _await_libvirt(self) -> None:
        """Retry libvirt until it answers, then do what start-up skipped: adopt, reconcile, watch health."""
        assert self.ctx is not None and self.registrar is not None
        assert self.instance_controller is not None and self.volume_controller is not None
        while not self._stop.wait(self.config.timings.libvirt_retry_every):
            try:
                self.ctx.domains.connect()
                self._adopt()
            except Exception as exc:
                self.registrar.set_ready(False, str(NodeReason.LIBVIRT_UNAVAILABLE), self._libvirt_down(exc))
                continue
            self.instance_controller.start()
            self.volume_controller.start()
            self.registrar.set_ready(True, str(NodeReason.HANDLER_READY), "libvirt and the VM network are up")
            log.info("node handler: libvirt at %s answers; node %s is Ready", self.config.libvirt_uri,
                     self.config.node_name)
            announce(f"dvp agent: node {self.config.node_name} ready (libvirt is back)")
            self._background()
            return

    def _background(self) -> None:
        if self.metrics is not None:  # domain stats need libvirt
            self.metrics.start()
        threading.Thread(target=self._sweeper, name="orphan-sweep", daemon=True).start()
        threading.Thread(target=self._health, name="libvirt-health", daemon=True).start()

    # -- steps -----------------------------------------------------------------------------------
    def _connect_api(self) -> KubeClient:
        """The API client; waits for an API server that is not up yet (not for a refused token)."""
        kube = self._kube or KubeClient.from_kubeconfig(self.config.kubeconfig, user_agent="dvp-agent",
                                                        local_socket=self.config.api_socket)
        delays = self.config.timings.api_wait
        for attempt in range(len(delays) + 1):
            try:
                kube.request("GET", "/version")
                return kube
            except KubeError as exc:
                if exc.status == 401:
                    raise KubeError(401, "Unauthorized", f"the API server refused the token in {self.config.kubeconfig}: "
                                    "issue this node a new one") from exc
                if attempt == len(delays):
                    raise
            except Exception:
                if attempt == len(delays):
                    raise
            log.info("the API server is not reachable yet; retrying in %.0fs", delays[attempt])
            time.sleep(delays[attempt])
        raise AssertionError("unreachable")

    def _start_watches(self) -> None:
        assert self.ctx is not None
        for inf in (self.ctx.instances, self.ctx.volumes):
            inf.start()
        for inf in (self.ctx.instances, self.ctx.volumes):
            if not inf.wait_synced(30):
                raise TimeoutError(f"no list of {inf.resource.plural} within 30 s")

    def _adopt(self) -> None:
        assert self.ctx is not None
        owned = self.ctx.domains.owned()
        known = {o["metadata"]["uid"] for o in self.ctx.instances.list()}
        adopted = [m["domain"] for uid, m in owned.items() if uid in known]
        if adopted:
            log.info("adopted %d domain(s): %s", len(adopted), ", ".join(sorted(adopted)))
        self.sweep()

    # -- watches -> work queues ------------------------------------------------------------------
    def _on_instance(self, typ: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        assert self.instance_controller is not None
        if typ == "DELETED":
            self._sweep_now.set()
            return
        if typ == "MODIFIED" and old is not None and _same_but_status(old, obj):
            return  # a status write (ours): nothing to act on
        self.instance_controller.enqueue(key_of(obj))

    def _on_volume(self, typ: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        assert self.volume_controller is not None and self.instance_controller is not None and self.ctx is not None
        if typ != "DELETED":
            self.volume_controller.enqueue(key_of(obj))
        if typ == "MODIFIED" and old is not None and _read_by_instances(old) == _read_by_instances(obj):
            return  # a provisioning's progress, a revert asked or done: nothing its instances read
        ns, name = key_of(obj)
        for inst in self.ctx.instances.by_index(indexes.BY_VOLUME, f"{ns}/{name}"):
            self.instance_controller.enqueue(key_of(inst))

    def _on_domain_event(self, uid: str) -> None:
        if self.ctx is None or self.instance_controller is None:
            return
        for obj in self.ctx.instances.by_index(indexes.BY_UID, uid):
            self.instance_controller.enqueue(key_of(obj))

    # -- background ------------------------------------------------------------------------------
    def sweep(self) -> list[str]:
        """Remove domains and local state of this node whose instance no longer exists."""
        ctx = self.ctx
        assert ctx is not None and self.instance_reconciler is not None
        known = {o["metadata"]["uid"] for o in ctx.instances.list()}
        removed = []
        for uid, meta in ctx.domains.owned().items():
            if uid in known or not self._gone(meta.get("namespace", ""), meta.get("name", ""), uid):
                continue
            log.info("removing orphaned domain %s (instance %s/%s is gone)", meta["domain"], meta.get("namespace"),
                     meta.get("name"))
            self.instance_reconciler.cleanup(uid)
            removed.append(uid)
        instances_dir = ctx.layout.state_dir / "instances"
        for d in instances_dir.iterdir() if instances_dir.is_dir() else ():
            if d.name not in known and ctx.domains.lookup(d.name) is None and not _young(d):
                shutil.rmtree(d, ignore_errors=True)
        return removed

    def _gone(self, namespace: str, name: str, uid: str) -> bool:
        """Double-check with the API (not the cache) before removing anything."""
        assert self.ctx is not None
        try:
            obj = self.ctx.kube.get_or_none(INSTANCES, name, namespace) if namespace and name else None
        except KubeError:
            return False
        return obj is None or obj["metadata"].get("uid") != uid

    def _sweeper(self) -> None:
        while not self._stop.is_set():
            self._sweep_now.wait(self.ctx.runtime.sweep_every if self.ctx else RuntimeSettings().sweep_every)
            self._sweep_now.clear()
            if self._stop.is_set():
                return
            try:
                self.sweep()
            except Exception:
                log.exception("orphan sweep failed")

    def _health(self) -> None:
        assert self.ctx is not None and self.registrar is not None
        while not self._stop.wait(self.config.timings.lease_renew_every):
            try:
                self.ctx.domains.connect().getLibVersion()
                self.registrar.set_ready(True, str(NodeReason.HANDLER_READY), "libvirt and the VM network are up")
            except Exception as exc:
                self.registrar.set_ready(False, str(NodeReason.LIBVIRT_UNAVAILABLE),
                                         f"libvirt at {self.config.libvirt_uri} does not answer: {exc}")


def _read_by_instances(volume: dict[str, Any]) -> tuple[Any, ...]:
    """What an instance reads of its volumes (`prepare.resolve_disks`, the migration's switch-over):
    which volume it is, whether it is going, its node, its phase and its file."""
    meta, status = volume.get("metadata") or {}, volume.get("status") or {}
    return (meta.get("uid"), meta.get("deletionTimestamp"), (volume.get("spec") or {}).get("nodeName"),
            status.get("phase"), status.get("path"))


def _same_but_status(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """True when only status (and the resourceVersion) changed between two versions of an object."""
    a, b = old.get("metadata") or {}, new.get("metadata") or {}
    keys = ("generation", "deletionTimestamp", "finalizers", "labels", "uid")
    return old.get("spec") == new.get("spec") and all(a.get(k) == b.get(k) for k in keys)


def _split(listen: str) -> tuple[str, int]:
    from controlplane.nodehandler.config import split_listen

    return split_listen(listen, field_name="console-listen")


def _young(path: Path) -> bool:
    """Made within the last 10 minutes: maybe an incoming migration's, whose domain starts here soon."""
    try:
        return time.time() - path.stat().st_mtime < INCOMING_GRACE
    except OSError:
        return False
