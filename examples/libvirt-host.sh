#!/usr/bin/env bash
# Make sure libvirt runs on this host (for `make run` on a machine without systemd):
# `start DIR` starts virtlogd and libvirtd if qemu:///system does not answer (with their
# default PID files, so other tools see them), noting in DIR that it did (exit 0: started here,
# 1: already running); `stop DIR` stops what start started, by PID.
# Where systemd is PID 1 it only asks systemd. The settings follow docs/nodehandler.md.
set -euo pipefail
cmd=$1 dir=$2
mkdir -p "$dir"
if [ "$cmd" = stop ]; then
  for name in libvirtd virtlogd; do
    [ -e "$dir/$name.started" ] || continue
    pid=$(cat "/run/$name.pid" 2>/dev/null || true)
    if [ -n "$pid" ] && [ "$pid" = "$(cat "$dir/$name.started")" ] && [ "$(cat /proc/"$pid"/comm 2>/dev/null)" = "$name" ]; then
      kill "$pid" || true
    fi
    rm -f "$dir/$name.started"
  done
  exit 0
fi
virsh -q -c qemu:///system uri >/dev/null 2>&1 && exit 1
if [ -d /run/systemd/system ]; then systemctl start virtlogd libvirtd; exit 1; fi
getent group libvirt-qemu >/dev/null || groupadd -r libvirt-qemu
id libvirt-qemu >/dev/null 2>&1 || useradd -r -g libvirt-qemu -d /var/lib/libvirt -s /usr/sbin/nologin libvirt-qemu
mkdir -p /var/log/libvirt/qemu /var/run/libvirt /var/lib/libvirt/qemu /var/cache/libvirt
conf=/etc/libvirt/qemu.conf
for kv in 'user = "root"' 'group = "root"' 'security_driver = "none"' 'cgroup_controllers = [ ]'; do
  key=${kv%% =*}
  if grep -qE "^\s*$key\s*=" "$conf"; then sed -i -E "s|^\s*$key\s*=.*|$kv|" "$conf"; else echo "$kv" >>"$conf"; fi
done
if ! python3 -c 'import socket,sys; socket.socket(socket.AF_UNIX).connect(sys.argv[1])' /run/libvirt/virtlogd-sock 2>/dev/null; then
  virtlogd -d
  for _ in $(seq 1 50); do [ -s /run/virtlogd.pid ] && break; sleep 0.1; done
  cat /run/virtlogd.pid >"$dir/virtlogd.started"
fi
libvirtd -d
for _ in $(seq 1 100); do
  if virsh -q -c qemu:///system uri >/dev/null 2>&1; then cat /run/libvirtd.pid >"$dir/libvirtd.started"; exit 0; fi
  sleep 0.1
done
echo "libvirtd did not answer on qemu:///system within 10 s" >&2
exit 2
