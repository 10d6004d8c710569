"""Network checks: a valid and unique host name that resolves, `localhost` that resolves, the
platform's ports free, an address in the declared internal network, and platform networks that
do not collide with the host's routes."""

from __future__ import annotations

import ipaddress

from installer.checks import settings
from installer.checks.context import CheckContext
from installer.checks.model import Severity
from installer.checks.registry import Outcome, checker, fail, ok
from installer.config.types import is_rfc1123_label

check = checker("network")
FACTS = ("connection.facts",)


@check("network.hostname", "the host name is a valid RFC 1123 label (it becomes the node name)", severity=Severity.ERROR, depends=FACTS)
def hostname(ctx: CheckContext) -> Outcome:
    name = ctx.facts.hostname
    expected = "lower-case letters, digits and '-', at most 63, starting and ending alphanumeric"
    if is_rfc1123_label(name):
        return ok(name, expected)
    return fail(repr(name), expected, "set a valid name: hostnamectl set-hostname NAME (and update /etc/hosts)")


@check("network.hostname_unique", "no other host has the same host name", severity=Severity.ERROR, depends=("network.hostname",), scope="cluster")
def hostname_unique(ctx: CheckContext) -> Outcome:
    name = ctx.facts.hostname
    others = [
        p.target.name for p in ctx.peers
        if p is not ctx.state and p.facts is not None and p.facts.hostname == name
    ]
    expected = "a name no other host uses"
    if not others:
        return ok(name, expected)
    return fail(f"{name} is also the host name of {', '.join(others)}", expected, "give every host its own name (hostnamectl set-hostname)")


@check("network.resolve_self", "the host resolves its own name", severity=Severity.ERROR, depends=FACTS)
def resolve_self(ctx: CheckContext) -> Outcome:
    f = ctx.facts
    expected = f"`getent hosts {f.hostname}` returns an address"
    if f.resolve_self:
        return ok(f"{f.hostname} -> {', '.join(f.resolve_self)}", expected)
    return fail(f"{f.hostname} does not resolve", expected, f"add `<address> {f.hostname}` to /etc/hosts or to DNS")


@check("network.resolve_localhost", "localhost resolves to a loopback address", severity=Severity.ERROR, depends=FACTS)
def resolve_localhost(ctx: CheckContext) -> Outcome:
    addrs = ctx.facts.resolve_localhost
    expected = "localhost -> 127.0.0.1 or ::1"
    loopback = [a for a in addrs if _is_loopback(a)]
    if loopback:
        return ok(f"localhost -> {', '.join(addrs)}", expected)
    observed = f"localhost -> {', '.join(addrs)}" if addrs else "localhost does not resolve"
    return fail(observed, expected, "add `127.0.0.1 localhost` to /etc/hosts")


def _is_loopback(text: str) -> bool:
    try:
        return ipaddress.ip_address(text).is_loopback
    except ValueError:
        return False


@check("network.ports", "the ports the platform listens on are free", severity=Severity.ERROR, depends=FACTS)
def ports(ctx: CheckContext) -> Outcome:
    need = settings.required_ports(ctx.target, ctx.role)
    listening = {port for _, port in ctx.facts.listening}
    expected = "free: " + ", ".join(f"{p} ({what})" for p, what in sorted(need.items()))
    busy = sorted(p for p in need if p in listening)
    if not busy:
        return ok("all free", expected)
    used = ", ".join(f"{p} ({need[p]})" for p in busy)
    return fail(f"in use: {used}", expected, f"stop what listens there (`ss -ltnp 'sport = :{busy[0]}'` shows it)")


@check("network.internal_address", "the host has an address in the internal network", severity=Severity.ERROR, depends=FACTS)
def internal_address(ctx: CheckContext) -> Outcome:
    nets = ctx.config.cluster.internal_network_cidrs
    addrs = [ipaddress.ip_interface(a) for a in ctx.facts.addresses]
    usable = [a for a in addrs if not a.ip.is_loopback and not a.ip.is_link_local]
    if not nets:
        expected = "a non-loopback address (no cluster.internalNetworkCIDRs declared)"
        if usable:
            return ok(", ".join(str(a) for a in usable), expected)
        return fail("only loopback addresses", expected, "configure the host's network")
    expected = "an address in " + ", ".join(str(n) for n in nets)
    for a in usable:
        for n in nets:
            if a.ip.version == n.version and a.ip in n:
                return ok(f"{a.ip} in {n}", expected)
    shown = ", ".join(str(a) for a in usable) or "none"
    return fail(f"addresses: {shown}", expected, "fix cluster.internalNetworkCIDRs, or give the host an address in it")


@check("network.cidr_routes", "the platform's networks do not overlap the host's routes", severity=Severity.ERROR, depends=FACTS)
def cidr_routes(ctx: CheckContext) -> Outcome:
    expected = "pod, service and VM networks distinct from every route of the host"
    clashes = []
    for route in ctx.facts.routes:
        if route.destination == "default":
            continue
        try:
            dest = ipaddress.ip_network(route.destination, strict=False)
        except ValueError:
            continue
        if dest.is_link_local:
            continue
        for path, net in ctx.config.platform_cidrs():
            if net.version == dest.version and net.overlaps(dest):
                clashes.append(f"{path} {net} overlaps route {dest}" + (f" dev {route.device}" if route.device else ""))
    if not clashes:
        return ok(f"no overlap with {len([r for r in ctx.facts.routes if r.destination != 'default'])} routes", expected)
    return fail("; ".join(clashes), expected, "choose other networks in the config (cluster.*CIDR, virtualization.virtualMachineCIDRs)")


CHECKS = [hostname, hostname_unique, resolve_self, resolve_localhost, ports, internal_address, cidr_routes]
