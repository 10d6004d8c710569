"""The shell script that gathers a host's facts in one round trip (run as root, read-only).

POSIX sh, standard tools only (awk, grep, cut, ls, df, ip, getent). Output is a list of
sections, each `@@name` on its own line followed by its lines; `installer.checks.facts` parses
it. Files describing the host's hardware and installation are read under `$DVP_HOST_ROOT`
(default: /) — a prefix that lets tests (and `dvp check` on a copy of a host's files) point the
checks at recorded host files. Live state — processes, sockets, addresses, routes, name
resolution, the clock, free disk space — always comes from the running system.
"""

from __future__ import annotations

import shlex

from installer.checks import settings

_LEFTOVERS = " ".join(settings.DVP_LEFTOVERS + settings.KUBERNETES_LEFTOVERS + settings.RUNTIME_LEFTOVERS)

_SCRIPT = r"""
R="${DVP_HOST_ROOT:-}"
R="${R%/}"
LC_ALL=C
export LC_ALL
s() { printf '\n@@%s\n' "$1"; }
f() { [ -r "$R$1" ] && cat "$R$1" 2>/dev/null; }

s root; printf '%s\n' "${R:-/}"
s arch; uname -m
s osrelease; f /proc/sys/kernel/osrelease
s os-release; f /etc/os-release
s cpuinfo
[ -r "$R/proc/cpuinfo" ] && awk -F': *' '
  /^processor[ \t]*:/ {n++}
  /^vendor_id[ \t]*:/ && v == "" {v=$2}
  /^model name[ \t]*:/ && m == "" {m=$2}
  /^flags[ \t]*:/ && fl == "" {fl=$2}
  END {print "count=" n; print "vendor=" v; print "model=" m; print "flags=" fl}' "$R/proc/cpuinfo"
s meminfo; [ -r "$R/proc/meminfo" ] && grep -E '^(MemTotal|MemAvailable):' "$R/proc/meminfo"
s proc-modules
if [ -r "$R/proc/modules" ]; then echo present; cut -d' ' -f1 "$R/proc/modules"; else echo absent; fi
s sys-module; ls "$R/sys/module" 2>/dev/null
s nested
for m in kvm_intel kvm_amd; do
  p="$R/sys/module/$m/parameters/nested"
  [ -r "$p" ] && printf '%s=%s\n' "$m" "$(cat "$p")"
done
KREL=$(f /proc/sys/kernel/osrelease)
s module-files
for n in modules.builtin modules.dep; do
  p="$R/lib/modules/$KREL/$n"
  if [ -n "$KREL" ] && [ -r "$p" ]; then
    echo "file=$n"
    grep -oE '/(kvm|kvm[-_]intel|kvm[-_]amd|vhost[-_]net|tun|br[-_]netfilter|overlay)\.ko' "$p" | sort -u | sed "s|^|$n:|"
  fi
done
s kconfig
{
  if [ -r "$R/proc/config.gz" ]; then gzip -dc "$R/proc/config.gz"
  elif [ -n "$KREL" ] && [ -r "$R/boot/config-$KREL" ]; then cat "$R/boot/config-$KREL"
  fi
} 2>/dev/null | grep -E '^(# )?CONFIG_(MODULES|KVM|KVM_INTEL|KVM_AMD|KVM_PVM|VHOST_NET|TUN|BRIDGE_NETFILTER|OVERLAY_FS)[= ]'
s devices
for d in /dev/kvm /dev/vhost-net /dev/net/tun; do
  p="$R$d"
  if [ -e "$p" ]; then
    t=other; [ -c "$p" ] && t=char
    r=no; [ -r "$p" ] && r=yes
    w=no; [ -w "$p" ] && w=yes
    printf '%s type=%s read=%s write=%s\n' "$d" "$t" "$r" "$w"
  fi
done
s dmi
for k in sys_vendor product_name; do v=$(f /sys/class/dmi/id/$k); [ -n "$v" ] && printf '%s=%s\n' "$k" "$v"; done
s detect-virt
if [ -z "$R" ] && command -v systemd-detect-virt >/dev/null 2>&1; then systemd-detect-virt --vm 2>/dev/null; fi
s iommu
printf 'groups=%s\n' "$(ls "$R/sys/kernel/iommu_groups" 2>/dev/null | wc -l)"
printf 'cmdline=%s\n' "$(f /proc/cmdline)"
s init
if [ -d "$R/run/systemd/system" ]; then echo systemd_booted=yes; else echo systemd_booted=no; fi
printf 'pid1=%s\n' "$(cat /proc/1/comm 2>/dev/null)"
s commands
for c in systemctl start-stop-daemon apt-get dnf yum zypper python3 sudo ip getent; do
  printf '%s=%s\n' "$c" "$(command -v "$c" 2>/dev/null)"
done
s python; command -v python3 >/dev/null 2>&1 && python3 --version 2>&1 | head -n 1
s hostname; uname -n
s resolve-self; getent hosts "$(uname -n)" 2>/dev/null
s resolve-localhost; getent hosts localhost 2>/dev/null
s addresses; ip -o addr show 2>/dev/null
s routes; ip -o route show table main 2>/dev/null; ip -o -6 route show table main 2>/dev/null
s listen; awk 'FNR > 1 && $4 == "0A" {print $2}' /proc/net/tcp /proc/net/tcp6 2>/dev/null
s processes
for p in /proc/[0-9]*/comm; do read -r c < "$p" && printf '%s\n' "$c"; done 2>/dev/null | sort -u
s leftovers
for p in $DVP_LEFTOVER_PATHS; do [ -e "$R$p" ] && printf '%s\n' "$p"; done
s disk
d="$R$DVP_DATA_DIR"
while [ -n "$d" ] && [ "$d" != "/" ] && [ ! -e "$d" ]; do d=$(dirname "$d"); done
[ -z "$d" ] && d=/
printf 'path=%s\n' "$d"
df -Pk "$d" 2>/dev/null | tail -n 1
s end
"""


def gather_script(*, data_dir: str) -> str:
    """The script with its parameters bound (fed to `sh -s` on the host)."""
    return (
        f"DVP_DATA_DIR={shlex.quote(data_dir)}\n"
        f"DVP_LEFTOVER_PATHS={shlex.quote(_LEFTOVERS)}\n" + _SCRIPT
    )


PROBE_COMMAND = (
    "printf 'uid=%s\\nuser=%s\\nsudo=%s\\ntime=%s\\n' "
    '"$(id -u)" "$(id -un)" "$(command -v sudo 2>/dev/null)" "$(date +%s.%N)"'
)
"""The first command on every host: who we are, whether sudo exists, and the host's clock."""
