"""The root shell script `dvp uninstall` runs on each host, and the parser of what it reports.

One script for both modes: with DRY=1 it only prints what it would do, so `--dry-run` lists
exactly what the real run removes. Every action is one line `<verb> <what>`:

    stop dvp-server            a service (systemd unit or init script), disabled and stopped
    stop dnsmasq 1234          the VM network's DHCP server (it outlives the services)
    delete bridge dvpbr0       the VM network's bridge
    delete routes table 166 proto 166   the cross-host VM routes (docs/network.md), their
    delete rule 166            policy rules and VXLAN device, when the agent config has vm-routes
    delete tunnel dvpvx0
    remove /etc/dvp            a path written by the install (files and whole directories)
    keep /var/lib/dvp/server   kept by --keep-data (the datastore, VM volumes)
    disks 3                    VM disk volumes found (the CLI asks before deleting them)
    delete /etc/libvirt/qemu.conf migration TLS settings   the lines naming QEMU's migration
                               certificates (removed with them: libvirtd refuses a missing directory)
    leave /etc/libvirt/qemu.conf   edited by the install, left to libvirt's package

The paths come from installer/hostlayout.py (the on-host contract) and the node_prepare role.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from installer import hostlayout

SERVICES: tuple[hostlayout.ServiceName, ...] = ("dvp-server", "dvp-agent")
SYSTEM_FILES = ("/etc/modules-load.d/dvp.conf", "/etc/sysctl.d/90-dvp.conf",
                "/etc/systemd/system/libvirtd-tls.socket.d/dvp.conf",  # the migration listener's (systemd)
                "/etc/systemd/system/libvirtd-tcp.socket.d/dvp.conf",  # ... of installs before TLS
                hostlayout.QEMU_MIGRATION_PKI)  # QEMU's migration TLS (role libvirt_migration)
CACHE_DIR = "/var/cache/dvp"  # where the single binary unpacks itself when run as root
QEMU_CONF = "/etc/libvirt/qemu.conf"
DEFAULT_BRIDGE = "dvpbr0"
VM_TUNNEL = "dvpvx0"  # controlplane/nodehandler/vxlan.py (the installer does not import node handler internals)
KEPT_WITH_DATA = ("server", "volumes")  # under STATE_DIR: the datastore (+PKI, DVCR) and VM disks


def removed_paths() -> list[str]:
    """Every path the install writes outside the state directory, in removal order."""
    paths: list[str] = [hostlayout.BINARY, hostlayout.BINARY_PREVIOUS]
    for name in SERVICES:
        sp = hostlayout.service_paths(name)
        paths += [sp.systemd_unit, sp.init_script]
    paths += [*SYSTEM_FILES, hostlayout.CONFIG_DIR, hostlayout.RUN_DIR, hostlayout.LOG_DIR, CACHE_DIR]
    return paths


_SCRIPT = r"""
set -u
act() { printf '%s %s\n' "$1" "$2"; }
rmpath() {
  if [ -e "$1" ] || [ -L "$1" ]; then act remove "$1"; [ "$DRY" = 1 ] || rm -rf -- "$1"; fi
}
systemd=no; [ -z "$R" ] && [ -d /run/systemd/system ] && systemd=yes
for s in $SERVICES; do
  if [ -e "$R/etc/systemd/system/$s.service" ] || [ -e "$R/etc/init.d/$s" ] || [ -e "$RUN/$s.pid" ]; then
    act stop "$s"
    [ "$DRY" = 1 ] && continue
    if [ "$systemd" = yes ] && [ -e "$R/etc/systemd/system/$s.service" ]; then
      systemctl disable --now "$s" >/dev/null 2>&1 || true
    elif [ -x "$R/etc/init.d/$s" ]; then
      "$R/etc/init.d/$s" stop >/dev/null 2>&1 || true
    fi
    if [ -f "$RUN/$s.pid" ]; then
      pid=$(cat "$RUN/$s.pid" 2>/dev/null)
      if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
      fi
    fi
  fi
done
bridge=$(sed -n 's/^bridge:[[:space:]]*//p' "$CONF/agent.yaml" "$CONF/server.yaml" 2>/dev/null | tr -d "\"'" | head -n1)
bridge=${bridge:-$DEFAULT_BRIDGE}
for pf in "$STATE"/network/*/dnsmasq.pid; do
  [ -f "$pf" ] || continue
  pid=$(cat "$pf" 2>/dev/null)
  if [ -n "$pid" ] && [ "$(cat /proc/"$pid"/comm 2>/dev/null)" = dnsmasq ]; then
    act stop "dnsmasq $pid"
    [ "$DRY" = 1 ] || { kill "$pid" 2>/dev/null; for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done; }
  fi
done
if ip link show "$bridge" >/dev/null 2>&1; then
  act delete "bridge $bridge"
  [ "$DRY" = 1 ] || ip link del "$bridge" 2>/dev/null || true
fi
agentconf() {
  v=$(sed -n "s/^$1:[[:space:]]*//p" "$CONF/agent.yaml" 2>/dev/null | tr -d "\"'" | cut -d' ' -f1 | head -n1)
  echo "${v:-$2}"
}
if [ "$(agentconf vm-routes false)" = true ]; then
  table=$(agentconf route-table 166); proto=$(agentconf route-protocol 166); pref=$(agentconf route-rule-priority 166)
  if [ -n "$(ip -4 route show table "$table" proto "$proto" 2>/dev/null)" ]; then
    act delete "routes table $table proto $proto"
    [ "$DRY" = 1 ] || ip -4 route flush table "$table" proto "$proto" 2>/dev/null || true
  fi
  for p in "$pref" $((pref + 1)); do
    if ip -4 rule show pref "$p" 2>/dev/null | grep -q "lookup $table"; then
      act delete "rule $p"
      [ "$DRY" = 1 ] || ip -4 rule del pref "$p" 2>/dev/null || true
    fi
  done
  if ip link show "$TUNNEL" >/dev/null 2>&1; then
    act delete "tunnel $TUNNEL"
    [ "$DRY" = 1 ] || ip link del "$TUNNEL" 2>/dev/null || true
  fi
fi
n=0; counted=no
for d in "$VOLUMES" "$STATE/volumes"; do
  [ "$d" = "$STATE/volumes" ] && [ "$VOLUMES" = "$d" ] && [ "$counted" = yes ] && continue
  [ -d "$d" ] && n=$((n + $(find "$d" -type f 2>/dev/null | wc -l)))
  counted=yes
done
act disks "$n"
for p in $PATHS; do rmpath "$p"; done
if [ "$KEEP" = 1 ]; then
  for p in "$STATE"/* "$STATE"/.[!.]*; do
    [ -e "$p" ] || continue
    case " $KEPT " in *" ${p##*/} "*) act keep "$p" ;; *) rmpath "$p" ;; esac
  done
  [ -e "$VOLUMES" ] && act keep "$VOLUMES"
else
  rmpath "$VOLUMES"
  rmpath "$STATE"
fi
if [ -f "$QEMU_CONF" ] && grep -qE "$QEMU_TLS_KEYS" "$QEMU_CONF"; then
  act delete "$QEMU_CONF migration TLS settings"  # they name a directory removed above: libvirtd would not start
  [ "$DRY" = 1 ] || sed -i -E "/$QEMU_TLS_KEYS/d" "$QEMU_CONF"
fi
[ -f "$QEMU_CONF" ] && act leave "$QEMU_CONF"
if [ "$DRY" != 1 ] && [ "$systemd" = yes ]; then systemctl daemon-reload >/dev/null 2>&1 || true; fi
[ "$DRY" = 1 ] || [ -n "$R" ] || sysctl --system >/dev/null 2>&1 || true
exit 0
"""


def host_script(*, dry_run: bool, keep_data: bool, vm_storage_dir: str, root: str = "") -> str:
    """The script with its parameters bound (fed to `sh -s` as root). `root` prefixes every path
    (tests run it against a scratch tree; on hosts it is empty)."""
    params = {
        "R": root,
        "DRY": "1" if dry_run else "0",
        "KEEP": "1" if keep_data else "0",
        "SERVICES": " ".join(SERVICES),
        "PATHS": " ".join(root + p for p in removed_paths()),
        "STATE": root + hostlayout.STATE_DIR,
        "VOLUMES": root + vm_storage_dir,
        "RUN": root + hostlayout.RUN_DIR,
        "CONF": root + hostlayout.CONFIG_DIR,
        "KEPT": " ".join(KEPT_WITH_DATA),
        "DEFAULT_BRIDGE": DEFAULT_BRIDGE,
        "TUNNEL": VM_TUNNEL,
        "QEMU_CONF": root + QEMU_CONF,
        "QEMU_TLS_KEYS": r"^\s*migrate_tls_x509_(cert_dir|verify)\s*=",
    }
    head = "".join(f"{k}={shlex.quote(v)}\n" for k, v in params.items())
    return head + _SCRIPT


@dataclass
class HostReport:
    """What the script did (or would do) on one host."""

    host: str
    dry_run: bool
    stopped: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)
    disks: int = 0
    ok: bool = True
    message: str = ""

    def to_json(self) -> dict[str, object]:
        return {"host": self.host, "dryRun": self.dry_run, "ok": self.ok, "message": self.message,
                "stopped": self.stopped, "deleted": self.deleted, "removed": self.removed, "kept": self.kept,
                "left": self.left, "disks": self.disks}

    def lines(self) -> list[str]:
        verb = "would " if self.dry_run else ""
        out = [f"{verb}stop {s}" for s in self.stopped]
        out += [f"{verb}delete {d}" for d in self.deleted]
        out += [f"{verb}remove {p}" for p in self.removed]
        out += [f"keep {p} (--keep-data)" for p in self.kept]
        out += [f"leave {p} (edited by the install; belongs to libvirt)" for p in self.left]
        return out


def parse_report(host: str, text: str, *, dry_run: bool) -> HostReport:
    report = HostReport(host=host, dry_run=dry_run)
    for line in text.splitlines():
        verb, _, what = line.partition(" ")
        if verb == "stop":
            report.stopped.append(what)
        elif verb == "delete":
            report.deleted.append(what)
        elif verb == "remove":
            report.removed.append(what)
        elif verb == "keep":
            report.kept.append(what)
        elif verb == "leave":
            report.left.append(what)
        elif verb == "disks" and what.strip().isdigit():
            report.disks = int(what)
    return report
