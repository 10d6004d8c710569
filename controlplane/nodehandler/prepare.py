"""Everything a domain needs before it can start: its disks resolved to files on this node
(volumes that are Ready, images pulled into the node cache), its NoCloud seed written, its
NICs' MAC -> IP bindings given to dnsmasq, and finally the domain XML.

`NotReady` means "wait" (a volume still provisioning): the instance shows Pending and is looked
at again when the volume changes. Other errors fail the start and are shown in status.
"""

from __future__ import annotations

import base64
from typing import Any

from controlplane.api.instance import InstanceSpec
from controlplane.api.internal import VolumePhase
from controlplane.common.kube.client import SECRETS, KubeError
from controlplane.nodehandler import indexes
from controlplane.nodehandler.cloudinit_seed import SeedData, build_seed
from controlplane.nodehandler.context import NodeContext
from controlplane.nodehandler.domainxml import DomainInputs, ResolvedDisk, build_domain_xml

USER_DATA_KEYS = ("userData", "userdata", "user-data", "value")


class NotReady(Exception):
    """Something the instance needs is not there yet (the message says what)."""


class PrepareError(RuntimeError):
    """The instance cannot start as specified (the message names the field)."""


def resolve_disks(ctx: NodeContext, namespace: str, spec: InstanceSpec) -> tuple[ResolvedDisk, ...]:
    out: list[ResolvedDisk] = []
    for i, disk in enumerate(spec.disks):
        if disk.volume:
            vol = ctx.volumes.get(namespace, disk.volume)
            if vol is None:
                raise NotReady(f"volume {namespace}/{disk.volume} (disk {disk.name}) does not exist on this node")
            if not ctx.mine(vol):
                raise PrepareError(f"spec.disks[{i}].volume: {disk.volume} is on node "
                                   f"{(vol.get('spec') or {}).get('nodeName')!r}, not {ctx.node!r}")
            vstatus = vol.get("status") or {}
            if vstatus.get("phase") not in (VolumePhase.READY, VolumePhase.RESIZING) or not vstatus.get("path"):
                raise NotReady(f"volume {namespace}/{disk.volume} is {vstatus.get('phase') or 'Pending'}")
            path = ctx.layout.volume(namespace, disk.volume, vol["metadata"]["uid"])
            if not path.exists():
                raise NotReady(f"volume {namespace}/{disk.volume}: {path} does not exist yet")
            out.append(ResolvedDisk(spec=disk, path=path, format="qcow2"))
        else:
            assert disk.image_ref is not None
            image = ctx.images.ensure(disk.image_ref, disk.image_digest)
            out.append(ResolvedDisk(spec=disk, path=image.path, format="raw" if disk.cdrom else image.format))
    return tuple(out)


def user_data(ctx: NodeContext, namespace: str, spec: InstanceSpec) -> str:
    if spec.user_data is not None:
        return spec.user_data
    if spec.user_data_secret is None:
        return ""
    try:
        secret = ctx.kube.get(SECRETS, spec.user_data_secret, namespace)
    except KubeError as exc:
        if exc.not_found:
            raise NotReady(f"secret {namespace}/{spec.user_data_secret} (spec.cloudInit.userDataSecretRef) "
                           "does not exist") from exc
        raise
    data = secret.get("data") or {}
    for key in USER_DATA_KEYS:
        if key in data:
            return base64.b64decode(data[key]).decode()
    raise PrepareError(f"spec.cloudInit.userDataSecretRef: secret {namespace}/{spec.user_data_secret} has none of "
                       f"the keys {', '.join(USER_DATA_KEYS)}")


def check_addresses(ctx: NodeContext, obj: dict[str, Any], spec: InstanceSpec) -> None:
    """An IP or MAC of this instance bound to another live instance of the node is an error."""
    uid = obj["metadata"]["uid"]
    for i, mine in enumerate(spec.nics):
        for kind, value in (("ip", mine.ip), ("mac", mine.mac)):
            if not value:
                continue
            for other in ctx.instances.by_index(indexes.BY_ADDRESS, indexes.address(kind, value)):
                meta = other.get("metadata") or {}
                if meta.get("uid") == uid or not ctx.mine(other) or meta.get("deletionTimestamp"):
                    continue
                raise PrepareError(f"spec.nics[{i}].{kind}: {value} is already used by instance "
                                   f"{meta.get('namespace')}/{meta.get('name')} on this node")


def bindings(ctx: NodeContext) -> dict[str, str]:
    """MAC -> IP for every NIC with an IP of every live instance of this node on the default network."""
    out: dict[str, str] = {}
    for obj in ctx.instances.list():
        if not ctx.mine(obj) or (obj.get("metadata") or {}).get("deletionTimestamp"):
            continue
        for nic in (obj.get("spec") or {}).get("nics") or []:
            if nic.get("ip") and (nic.get("network") or "default") == "default":
                out[str(nic["mac"]).lower()] = str(nic["ip"])
    return out


def domain_xml(ctx: NodeContext, obj: dict[str, Any], spec: InstanceSpec) -> str:
    """Resolve disks, write the seed, bind the NICs, and build the XML (raises NotReady/PrepareError)."""
    meta = obj["metadata"]
    ns, name, uid = meta["namespace"], meta["name"], meta["uid"]
    for i, nic in enumerate(spec.nics):
        if nic.network != "default":
            raise PrepareError(f"spec.nics[{i}].network: {nic.network!r} is not configured on node {ctx.node} "
                               "(only 'default', the node's VM bridge)")
    check_addresses(ctx, obj, spec)
    disks = resolve_disks(ctx, ns, spec)
    # always a seed: meta-data carries the host name and instance-id even without user data
    seed = build_seed(SeedData(instance_id=uid, local_hostname=spec.hostname, user_data=user_data(ctx, ns, spec),
                                   network_config=spec.network_config), ctx.layout.seed(uid))
    ctx.network.set_bindings(bindings(ctx))
    ctx.layout.serial_log(uid).parent.mkdir(parents=True, exist_ok=True)
    vnc = ctx.layout.vnc_socket(uid)
    vnc.parent.mkdir(parents=True, exist_ok=True)
    vnc.unlink(missing_ok=True)
    return build_domain_xml(DomainInputs(
        name=ctx.domains.name_for(ns, name), uid=uid, namespace=ns, instance=name, node=ctx.node,
        generation=int(meta.get("generation") or 0), domain_type=ctx.decision.domain_type, spec=spec, disks=disks,
        bridges={"default": ctx.network.bridge}, seed=seed, serial_log=ctx.layout.serial_log(uid), vnc_socket=vnc,
        cpu_quota=ctx.cpu_quota,
    ))
