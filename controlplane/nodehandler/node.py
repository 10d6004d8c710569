"""Node registration and heartbeats: the handler's Node object and its Lease.

On start the handler creates (or updates) its Node: labels (`kubernetes.io/hostname`, os/arch,
CPU vendor and model, `virtualization.deckhouse.io/kvm`, nested virtualization, the handler's
version — also as an annotation, for the upgrade), capacity and allocatable CPU and memory
(allocatable = capacity minus the configured reservation), addresses (InternalIP, Hostname),
the console endpoint's port in `daemonEndpoints.kubeletEndpoint.Port`, node info, and two
conditions: Ready (libvirt reachable, VM network up) and KVM (the hypervisor decision with its
reason). A Lease in `kube-node-lease` named after the node is renewed every few seconds (the
cheap heartbeat); the Node status is refreshed less often, or at once when something changes
or when a heartbeat gets through after failed ones (the node lifecycle controller sets
Ready=Unknown on a node whose Lease it has not seen renewed for its grace period).
"""

from __future__ import annotations

import datetime as dt
import logging
import platform
import threading
from typing import Any

from controlplane.api.condition_builder import apply as set_condition
from controlplane.api.instance import quantity_bytes
from controlplane.api.internal import (
    LABEL_CPU_MODEL,
    LABEL_CPU_VENDOR,
    LABEL_HANDLER_VERSION,
    LABEL_KVM,
    LABEL_KVM_NESTED,
    NODE_LEASE_NAMESPACE,
    NodeCondition,
    NodeReason,
)
from controlplane.common.clusterversions import label_value
from controlplane.common.kube.client import LEASES, NODES, KubeClient, KubeError
from controlplane.common.version import __version__
from controlplane.nodehandler.config import AgentConfig
from controlplane.nodehandler.hypervisor import Decision, HostFacts

log = logging.getLogger(__name__)


def _ts(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _micro(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def node_labels(config: AgentConfig, facts: HostFacts, decision: Decision) -> dict[str, str]:
    labels = {
        "kubernetes.io/hostname": config.node_name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine()),
        LABEL_KVM: "true" if decision.kvm else "false",
        LABEL_CPU_VENDOR: label_value(facts.vendor),
        LABEL_CPU_MODEL: label_value(facts.model),
        LABEL_HANDLER_VERSION: label_value(__version__),
        f"node-role.kubernetes.io/{config.node_role}": "",
    }
    if decision.nested is not None:
        labels[LABEL_KVM_NESTED] = "true" if decision.nested else "false"
    return labels


def node_status(config: AgentConfig, facts: HostFacts, decision: Decision, *, old: dict[str, Any], node_ip: str,
                console_port: int, ready: bool, ready_reason: str, ready_message: str,
                now: dt.datetime, extra: dict[str, tuple[bool, str, str]] | None = None) -> dict[str, Any]:
    stamp = _ts(now)
    mem_kib = facts.memory_bytes // 1024
    reserved_kib = quantity_bytes(config.reserved_memory, "reserved-memory") // 1024
    conds = list(old.get("conditions") or [])
    conds = set_condition(conds, str(NodeCondition.READY), ready, ready_reason, ready_message, now=stamp,
                          heartbeat=True)
    conds = set_condition(conds, str(NodeCondition.KVM), decision.kvm, str(decision.reason), decision.message,
                          now=stamp, heartbeat=True)
    for type_, (ok, reason, message) in sorted((extra or {}).items()):
        conds = set_condition(conds, type_, ok, reason, message, now=stamp, heartbeat=True)
    return {
        "capacity": {"cpu": str(facts.cpus), "memory": f"{mem_kib}Ki", "pods": "0"},
        "allocatable": {"cpu": str(max(facts.cpus - config.reserved_cpu, 0)),
                        "memory": f"{max(mem_kib - reserved_kib, 0)}Ki", "pods": "0"},
        "conditions": conds,
        "addresses": [{"type": "InternalIP", "address": node_ip}, {"type": "Hostname", "address": config.node_name}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": console_port}},
        "nodeInfo": {
            "kubeletVersion": f"dvp-{__version__}", "kernelVersion": platform.release(),
            "osImage": _os_image(), "operatingSystem": "linux", "architecture": platform.machine(),
            "containerRuntimeVersion": f"libvirt+qemu ({decision.domain_type})",
        },
    }


def _os_image() -> str:
    try:
        for line in open("/etc/os-release").read().splitlines():  # noqa: SIM115
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return "linux"


class NodeRegistrar:
    def __init__(self, kube: KubeClient, config: AgentConfig, facts: HostFacts, decision: Decision, *,
                 node_ip: str) -> None:
        self.kube = kube
        self.config = config
        self.facts = facts
        self.decision = decision
        self.node_ip = node_ip
        self.console_port = 0
        self.ready = (False, str(NodeReason.LIBVIRT_UNAVAILABLE), "starting")
        self.conditions: dict[str, tuple[bool, str, str]] = {}
        self._stop = threading.Event()
        self._dirty = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def name(self) -> str:
        return self.config.node_name

    def set_ready(self, ready: bool, reason: str, message: str) -> None:
        if (ready, reason, message) != self.ready:
            self.ready = (ready, reason, message)
            self._dirty.set()

    def set_condition(self, type_: str, ok: bool, reason: str, message: str) -> None:
        """Another condition the node reports about itself (e.g. DVCRAccess), written with its status."""
        if self.conditions.get(type_) != (ok, reason, message):
            self.conditions[type_] = (ok, reason, message)
            self._dirty.set()

    # -- Node ------------------------------------------------------------------------------------
    def register(self) -> dict[str, Any]:
        labels = node_labels(self.config, self.facts, self.decision)
        annotations = {LABEL_HANDLER_VERSION: __version__}
        node = self.kube.get_or_none(NODES, self.name)
        if node is None:
            try:
                node = self.kube.create(NODES, {"apiVersion": "v1", "kind": "Node", "metadata": {
                    "name": self.name, "labels": labels, "annotations": annotations}})
                log.info("registered node %s", self.name)
            except KubeError as exc:
                if not exc.already_exists:
                    raise
                node = self.kube.get(NODES, self.name)
        current = node["metadata"].get("labels") or {}
        if any(current.get(k) != v for k, v in labels.items()) or \
                (node["metadata"].get("annotations") or {}).get(LABEL_HANDLER_VERSION) != __version__:
            node = self.kube.patch(NODES, self.name, {"metadata": {"labels": labels, "annotations": annotations}})
        return self.update_status(node)

    def update_status(self, node: dict[str, Any] | None = None) -> dict[str, Any]:
        node = node or self.kube.get(NODES, self.name)
        ready, reason, message = self.ready
        status = node_status(self.config, self.facts, self.decision, old=node.get("status") or {},
                             node_ip=self.node_ip, console_port=self.console_port, ready=ready, ready_reason=reason,
                             ready_message=message, now=dt.datetime.now(dt.UTC), extra=dict(self.conditions))
        return self.kube.patch(NODES, self.name, {"status": status}, subresource="status")

    # -- Lease -----------------------------------------------------------------------------------
    def renew_lease(self) -> None:
        now = dt.datetime.now(dt.UTC)
        spec = {"holderIdentity": self.name, "leaseDurationSeconds": self.config.timings.lease_duration,
                "renewTime": _micro(now)}
        lease = self.kube.get_or_none(LEASES, self.name, NODE_LEASE_NAMESPACE)
        if lease is None:
            self.kube.create(LEASES, {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                                      "metadata": {"name": self.name, "namespace": NODE_LEASE_NAMESPACE},
                                      "spec": {**spec, "acquireTime": _micro(now)}}, NODE_LEASE_NAMESPACE)
            return
        self.kube.patch(LEASES, self.name, {"spec": spec}, NODE_LEASE_NAMESPACE)

    # -- loop ------------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="node-heartbeat", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._dirty.set()

    def _run(self) -> None:
        t = self.config.timings
        last_status = dt.datetime.now(dt.UTC)
        while not self._stop.is_set():
            try:
                self.renew_lease()
                if self._dirty.is_set() or (dt.datetime.now(dt.UTC) - last_status).total_seconds() >= \
                        t.node_status_every:
                    self._dirty.clear()
                    self.update_status()
                    last_status = dt.datetime.now(dt.UTC)
            except Exception as exc:
                log.warning("node %s heartbeat: %s", self.name, exc)
                # back from an outage the node lifecycle controller may have set Ready=Unknown:
                # the first heartbeat that gets through writes the node's own status again
                self._dirty.set()
                self._stop.wait(t.lease_renew_every)
                continue
            self._dirty.wait(t.lease_renew_every)
